//! Tracing setup: human-readable or JSON lines on stdout, filtered by `TESSERA_LOG_LEVEL` / `RUST_LOG`.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::config::LogFormat;

/// Installs the global subscriber once; later calls (tests start many apps) are no-ops.
/// `serve` logs to stdout; other commands log to stderr so their stdout (`--json`) stays parseable.
pub fn init(format: LogFormat, level: &str, to_stdout: bool) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(level));
    let writer = if to_stdout {
        BoxMakeWriter::new(std::io::stdout)
    } else {
        BoxMakeWriter::new(std::io::stderr)
    };
    let ansi = if to_stdout {
        std::io::IsTerminal::is_terminal(&std::io::stdout())
    } else {
        std::io::IsTerminal::is_terminal(&std::io::stderr())
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}

/// What the unit tests log, for tests about logs: a global subscriber installed once (the blocking
/// threads log through the global subscriber, not through a test's thread-local one), at `info` for
/// Tessera's own targets, without colours.
#[cfg(test)]
pub(crate) mod capture {
    use std::sync::{Arc, Mutex, OnceLock, PoisonError};

    fn buffer() -> &'static Arc<Mutex<Vec<u8>>> {
        static LINES: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
        LINES.get_or_init(|| {
            let lines = Arc::new(Mutex::new(Vec::new()));
            let sink = lines.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("tessera=info"))
                .with_ansi(false)
                .with_writer(move || Sink(sink.clone()))
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber in the unit tests");
            lines
        })
    }

    /// Starts capturing (call it before logging).
    pub fn start() {
        buffer();
    }

    /// The captured lines that contain `marker` (tests run in parallel: each logs its own marker).
    pub fn lines_with(marker: &str) -> Vec<String> {
        let bytes = buffer().lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|l| l.contains(marker))
            .map(str::to_owned)
            .collect()
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
