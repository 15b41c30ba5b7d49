//! Structural checks on `docker-compose.yml` and the `Dockerfile`, so the deployment files cannot silently rot.

use serde_yaml::Value;

fn compose() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml"))
        .expect("docker-compose.yml should exist at the crate root and be readable");
    serde_yaml::from_str(&text).expect("docker-compose.yml should be valid YAML")
}

fn dockerfile() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile"))
        .expect("Dockerfile should exist at the crate root and be readable")
}

/// The service `name`, asserted to be a mapping.
fn service<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let svc = &doc["services"][name];
    assert!(
        svc.is_mapping(),
        "docker-compose.yml should define service `{name}` as a mapping, got {svc:?}"
    );
    svc
}

/// A string variable from the `environment` mapping of `svc`.
fn env_var<'a>(svc: &'a Value, key: &str) -> &'a str {
    let env = &svc["environment"];
    assert!(
        env.is_mapping(),
        "the tessera service's `environment` should be a mapping, got {env:?}"
    );
    env[key].as_str().unwrap_or_else(|| {
        panic!(
            "tessera environment should set {key} to a string, got {:?}",
            env[key]
        )
    })
}

/// Host part of a URL-valued environment variable.
fn url_host(value: &str, key: &str) -> String {
    let url = url::Url::parse(value)
        .unwrap_or_else(|e| panic!("{key}={value:?} should be a valid URL: {e}"));
    url.host_str()
        .unwrap_or_else(|| panic!("{key}={value:?} should name a host"))
        .to_owned()
}

/// Non-comment Dockerfile instructions as `(INSTRUCTION, arguments)` pairs; a line ending in `\\`
/// continues on the next.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut joined: Vec<String> = Vec::new();
    let mut continuing = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || (line.is_empty() && !continuing) {
            continue;
        }
        let (body, more) = match line.strip_suffix('\\') {
            Some(body) => (body.trim_end(), true),
            None => (line, false),
        };
        match joined.last_mut() {
            Some(last) if continuing => {
                last.push(' ');
                last.push_str(body);
            }
            _ => joined.push(body.to_owned()),
        }
        continuing = more;
    }
    joined
        .iter()
        .filter_map(|line| {
            let mut parts = line.splitn(2, char::is_whitespace);
            let keyword = parts.next()?.to_ascii_uppercase();
            let rest = parts.next().unwrap_or("").trim().to_owned();
            Some((keyword, rest))
        })
        .collect()
}

#[test]
fn compose_defines_the_services_with_pinned_images() {
    let doc = compose();
    service(&doc, "tessera");
    let postgres = service(&doc, "postgres");
    let redis = service(&doc, "redis");

    let pg_image = postgres["image"].as_str().unwrap_or_default();
    assert!(
        pg_image.starts_with("postgres:16"),
        "postgres service should use a postgres:16 image, got {pg_image:?}"
    );
    let redis_image = redis["image"].as_str().unwrap_or_default();
    assert!(
        redis_image.starts_with("redis:7"),
        "redis service should use a redis:7 image, got {redis_image:?}"
    );
}

#[test]
fn tessera_is_built_locally_and_nginx_publishes_8080() {
    let doc = compose();
    let tessera = service(&doc, "tessera");

    assert!(
        !tessera["build"].is_null(),
        "tessera service should be built from this repository (`build:`)"
    );
    assert!(
        tessera["ports"].is_null(),
        "the tessera replicas should publish no port (clients come through nginx), got {:?}",
        tessera["ports"]
    );

    let nginx = service(&doc, "nginx");
    let ports = nginx["ports"]
        .as_sequence()
        .expect("nginx service should have a `ports` list");
    let publishes_8080 = ports.iter().any(|port| match port {
        // Short syntax: [HOST_IP:]HOST:CONTAINER[/PROTO]; it must publish a host port.
        Value::String(spec) => {
            let spec = spec.split('/').next().unwrap_or_default();
            let segments: Vec<&str> = spec.split(':').collect();
            segments.len() >= 2 && segments.last() == Some(&"8080")
        }
        // Long syntax: { target: 8080, published: ... }.
        Value::Mapping(_) => port["target"].as_u64() == Some(8080) && !port["published"].is_null(),
        _ => false,
    });
    assert!(
        publishes_8080,
        "nginx should publish container port 8080 to the host, got {ports:?}"
    );
}

#[test]
fn two_tessera_replicas_sit_behind_nginx_with_the_config_in_the_repository() {
    let doc = compose();
    let tessera = service(&doc, "tessera");
    let replicas = tessera["deploy"]["replicas"].as_u64().unwrap_or(1);
    assert!(
        replicas >= 2,
        "tessera should run at least two replicas (`deploy.replicas`), got {replicas}"
    );

    let nginx = service(&doc, "nginx");
    let image = nginx["image"].as_str().unwrap_or_default();
    assert!(
        image.starts_with("nginx:1."),
        "nginx should use a pinned nginx:1.x image, got {image:?}"
    );
    assert_eq!(
        nginx["depends_on"]["tessera"]["condition"].as_str(),
        Some("service_started"),
        "nginx should start after the tessera replicas (it resolves them at start)"
    );
    let volumes = nginx["volumes"]
        .as_sequence()
        .expect("nginx service should mount its configuration");
    let mounted = volumes
        .iter()
        .filter_map(Value::as_str)
        .find(|v| v.ends_with(":/etc/nginx/nginx.conf:ro"))
        .expect("nginx should mount a config file read-only as /etc/nginx/nginx.conf");
    let file = mounted.split(':').next().unwrap_or_default();
    let conf = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
        .unwrap_or_else(|e| panic!("{file} (mounted by nginx) should be in the repository: {e}"));
    for needed in [
        "upstream tessera",
        "server tessera:8080",
        "proxy_pass http://tessera",
        "proxy_next_upstream error timeout",
        "X-Forwarded-For $proxy_add_x_forwarded_for",
    ] {
        assert!(conf.contains(needed), "{file} should contain `{needed}`");
    }
    assert!(
        conf.contains("listen 8080"),
        "{file} should listen on the port nginx publishes"
    );

    // Every node names nginx's URL as the issuer and believes only nginx's X-Forwarded-For.
    let issuer = env_var(tessera, "TESSERA_ISSUER");
    assert_eq!(
        url::Url::parse(issuer).ok().and_then(|u| u.port()),
        Some(8080),
        "TESSERA_ISSUER should be nginx's public URL, got {issuer:?}"
    );
    let trusted: ipnet::IpNet = env_var(tessera, "TESSERA_TRUSTED_PROXIES")
        .parse()
        .expect("TESSERA_TRUSTED_PROXIES should be one CIDR");
    let nginx_ip: std::net::IpAddr = nginx["networks"]["tessera"]["ipv4_address"]
        .as_str()
        .expect("nginx should have a fixed address on the `tessera` network")
        .parse()
        .expect("an IP address");
    assert!(
        trusted.contains(&nginx_ip),
        "TESSERA_TRUSTED_PROXIES ({trusted}) should contain nginx's address {nginx_ip}"
    );
    assert!(
        trusted.prefix_len() >= 24,
        "TESSERA_TRUSTED_PROXIES should name nginx, not the whole network: {trusted}"
    );
}

#[test]
fn tessera_waits_for_healthy_postgres_and_redis() {
    let doc = compose();
    let tessera = service(&doc, "tessera");

    for dep in ["postgres", "redis"] {
        let condition = tessera["depends_on"][dep]["condition"].as_str();
        assert_eq!(
            condition,
            Some("service_healthy"),
            "tessera should depend on {dep} with `condition: service_healthy`"
        );
    }
}

#[test]
fn tessera_environment_points_at_the_compose_services() {
    let doc = compose();
    let tessera = service(&doc, "tessera");

    let db = env_var(tessera, "TESSERA_DATABASE_URL");
    assert!(
        db.starts_with("postgres://"),
        "TESSERA_DATABASE_URL should be a postgres:// URL, got {db:?}"
    );
    assert_eq!(
        url_host(db, "TESSERA_DATABASE_URL"),
        "postgres",
        "TESSERA_DATABASE_URL should point at the `postgres` service"
    );

    let redis = env_var(tessera, "TESSERA_REDIS_URL");
    assert_eq!(
        url_host(redis, "TESSERA_REDIS_URL"),
        "redis",
        "TESSERA_REDIS_URL should point at the `redis` service"
    );

    let bind = env_var(tessera, "TESSERA_BIND");
    assert!(
        bind.ends_with(":8080"),
        "TESSERA_BIND should listen on port 8080 to match the published port, got {bind:?}"
    );

    for secret in ["TESSERA_SECRET_PEPPER", "TESSERA_MASTER_KEY"] {
        let value = env_var(tessera, secret);
        assert!(
            !value.trim().is_empty(),
            "tessera environment should pass {secret} through, got an empty value"
        );
    }
}

#[test]
fn backing_services_have_healthchecks() {
    let doc = compose();
    for name in ["postgres", "redis"] {
        let test = &service(&doc, name)["healthcheck"]["test"];
        let present = match test {
            Value::Sequence(items) => !items.is_empty(),
            Value::String(cmd) => !cmd.trim().is_empty(),
            _ => false,
        };
        assert!(
            present,
            "{name} service should have a healthcheck with a non-empty `test`, got {test:?}"
        );
    }
}

#[test]
fn postgres_data_lives_on_the_declared_pgdata_volume() {
    let doc = compose();
    let postgres = service(&doc, "postgres");

    let volumes = postgres["volumes"]
        .as_sequence()
        .expect("postgres service should have a `volumes` list");
    let mounts_pgdata = volumes.iter().any(|volume| match volume {
        Value::String(spec) => spec.split(':').next() == Some("pgdata"),
        Value::Mapping(_) => volume["source"].as_str() == Some("pgdata"),
        _ => false,
    });
    assert!(
        mounts_pgdata,
        "postgres service should mount the named volume `pgdata`, got {volumes:?}"
    );

    assert!(
        doc["volumes"].get("pgdata").is_some(),
        "the `pgdata` volume should be declared under top-level `volumes:`"
    );
}

#[test]
fn dockerfile_is_multi_stage() {
    let text = dockerfile();
    let froms = instructions(&text)
        .iter()
        .filter(|(keyword, _)| keyword == "FROM")
        .count();
    assert!(
        froms >= 2,
        "Dockerfile should be multi-stage (at least two FROM lines), found {froms}"
    );
}

#[test]
fn dockerfile_runs_as_non_root() {
    let text = dockerfile();
    let parsed = instructions(&text);
    let user = parsed
        .iter()
        .rev()
        .find(|(keyword, _)| keyword == "USER")
        .map(|(_, args)| args.as_str())
        .expect("Dockerfile should have a USER instruction");
    let name = user.split(':').next().unwrap_or_default().trim();
    assert!(
        !name.is_empty() && name != "root" && name != "0",
        "Dockerfile's final USER should be a non-root user, got {user:?}"
    );
}

#[test]
fn dockerfile_entrypoint_is_tessera() {
    let text = dockerfile();
    let entrypoint = instructions(&text)
        .into_iter()
        .rev()
        .find(|(keyword, _)| keyword == "ENTRYPOINT")
        .map(|(_, args)| args)
        .expect("Dockerfile should have an ENTRYPOINT instruction");
    assert!(
        entrypoint.contains("tessera"),
        "Dockerfile's ENTRYPOINT should run the tessera binary, got {entrypoint:?}"
    );
}

/// `KEY=VALUE` pairs of every `ENV` instruction (the `ENV KEY VALUE` form too).
fn dockerfile_env() -> std::collections::HashMap<String, String> {
    let mut env = std::collections::HashMap::new();
    for (_, args) in instructions(&dockerfile())
        .into_iter()
        .filter(|(keyword, _)| keyword == "ENV")
    {
        if !args.contains('=') {
            let (k, v) = args.split_once(char::is_whitespace).unwrap_or((&args, ""));
            env.insert(k.to_owned(), v.trim().to_owned());
            continue;
        }
        for pair in args.split_whitespace() {
            let (k, v) = pair.split_once('=').expect("ENV KEY=VALUE pairs");
            env.insert(k.to_owned(), v.trim_matches('"').to_owned());
        }
    }
    env
}

#[test]
fn dockerfile_keeps_the_database_and_key_file_on_a_volume() {
    let parsed = instructions(&dockerfile());
    let volume = parsed
        .iter()
        .position(|(keyword, args)| keyword == "VOLUME" && args.contains("/var/lib/tessera"))
        .expect("Dockerfile should declare VOLUME /var/lib/tessera");
    let chown = parsed
        .iter()
        .position(|(keyword, args)| keyword == "RUN" && args.contains("chown"))
        .expect("the data directory is given to the tessera user");
    assert!(
        chown < volume,
        "VOLUME must come after the directory is prepared (later changes to it are discarded)"
    );

    let env = dockerfile_env();
    assert_eq!(
        env.get("TESSERA_DATABASE_URL").map(String::as_str),
        Some("sqlite:///var/lib/tessera/tessera.db"),
        "the SQLite database lives on the volume"
    );
    assert_eq!(
        env.get("TESSERA_DATA_DIR").map(String::as_str),
        Some("/var/lib/tessera"),
        "PostgreSQL nodes keep their key file on the volume"
    );
    // The key file is where the server will look for it: beside the database, on the volume.
    let mut vars: std::collections::HashMap<String, String> = env.clone();
    vars.retain(|k, _| k.starts_with("TESSERA_"));
    let settings = tessera::config::Settings::load(Some(std::path::Path::new("/dev/null")), &vars)
        .expect("the Dockerfile's settings are valid (and every name is a setting)");
    assert!(
        settings.key_file_path().starts_with("/var/lib/tessera"),
        "the key file lives on the volume, got {}",
        settings.key_file_path().display()
    );
    // With the compose file's PostgreSQL URL, the key file (when one is needed) is on the volume too.
    let mut pg = vars.clone();
    pg.insert(
        "TESSERA_DATABASE_URL".into(),
        env_var(service(&compose(), "tessera"), "TESSERA_DATABASE_URL").to_owned(),
    );
    let settings = tessera::config::Settings::load(Some(std::path::Path::new("/dev/null")), &pg)
        .expect("valid");
    assert!(settings.key_file_path().starts_with("/var/lib/tessera"));
}

#[test]
fn dockerfile_health_is_checked_by_the_binary() {
    let check = instructions(&dockerfile())
        .into_iter()
        .rev()
        .find(|(keyword, _)| keyword == "HEALTHCHECK")
        .map(|(_, args)| args)
        .expect("Dockerfile should have a HEALTHCHECK");
    let cmd = check
        .split_once("CMD ")
        .map(|(_, cmd)| cmd.trim())
        .expect("HEALTHCHECK CMD [...]");
    let argv: Vec<String> =
        serde_json::from_str(cmd).expect("the exec form: a JSON array, no shell in the image");
    assert_eq!(argv, ["tessera", "healthcheck"], "{check}");
}

#[test]
fn every_tessera_variable_in_the_deployment_files_is_a_setting() {
    let doc = compose();
    let compose_env = service(&doc, "tessera")["environment"]
        .as_mapping()
        .expect("environment mapping")
        .keys()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect::<Vec<_>>();
    for name in compose_env.into_iter().chain(dockerfile_env().into_keys()) {
        if name.starts_with("TESSERA_") {
            assert!(
                tessera::config::SETTINGS.iter().any(|s| s.env == name),
                "{name} is not a setting (see src/config.rs)"
            );
        }
    }
}
