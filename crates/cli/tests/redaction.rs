//! Credentials in component metadata never leave bindery: one test per binding family starts
//! the real binary against the real backend with a unique credential, once with text logs and
//! once with `--log-as-json`, drives a call that succeeds and calls that fail (a wrong host or
//! port, a refused login), and asserts that the credential is nowhere in the log, in the answers
//! the app got, or in `/v1.0/metadata`.
//!
//! Backends: PostgreSQL :5432, MariaDB :3306, Redis (a private `redis-server`), RabbitMQ :5672,
//! Mosquitto :1883, NATS :4222, and from `scripts/backends.sh` moto :15000, aiosmtpd :12525 and
//! Azurite :10000/:10001.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use bindery_test_support::redaction::{
    LogFormat, Seen, assert_hidden, assert_not_logged, component, last_error, unique_secret,
};
use bindery_test_support::{Answer, Bindery, TestApp, free_port, wait_until};
use serde_json::json;

/// Fail with the command that starts `name` when nothing listens on `port`.
fn require(name: &str, port: u16, start: &str) {
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "{name} is not reachable on 127.0.0.1:{port}; start it with: {start}"
    );
}

/// Run a command to completion; its stdout, or a failure naming it.
fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Start bindery with `files` in `format`.
async fn start(format: LogFormat, files: &[(&str, String)]) -> Bindery {
    let mut builder = format.apply(Bindery::builder("redaction"));
    for (name, text) in files {
        builder = builder.file(name, text);
    }
    builder.start().await
}

/// Start bindery with `yaml` alone, which names binding `name` that the backend refuses for a
/// reason no retry can fix: bindery must stop with exit code 1, naming the binding, and the log
/// (the reasons included) must not hold `secret`.
async fn refused_at_start(format: LogFormat, name: &str, yaml: String, secret: &str) {
    let mut b = format
        .apply(Bindery::builder("redaction"))
        .file("refused.yaml", &yaml)
        .no_wait()
        .start()
        .await;
    let status = b.wait_exit(std::time::Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(1), "{}", b.logs());
    assert!(b.logs().contains(name), "{}", b.logs());
    assert_not_logged(&b, format, secret);
}

#[tokio::test]
async fn postgresql_passwords_in_connection_strings() {
    require(
        "PostgreSQL",
        5432,
        "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    );
    let secret = unique_secret("pg");
    for format in LogFormat::ALL {
        let files = [
            // Trust authentication: the password is sent and not checked.
            (
                "ok.yaml",
                component(
                    "pg",
                    "bindings.postgresql",
                    &[(
                        "connectionString",
                        &format!(
                            "host=127.0.0.1 port=5432 user=postgres password={secret} dbname=test"
                        ),
                    )],
                ),
            ),
            (
                "down.yaml",
                component(
                    "pgdown",
                    "bindings.postgres",
                    &[(
                        "url",
                        &format!("postgresql://postgres:{secret}@127.0.0.1:1/test"),
                    )],
                ),
            ),
        ];
        let b = start(format, &files).await;
        let mut seen = Seen::new();
        let query = |sql: &str| json!({"operation": "query", "metadata": {"sql": sql}});
        assert_eq!(seen.invoke(&b, "pg", query("SELECT 1")).await.0, 200);
        let failed = seen
            .invoke(&b, "pg", query("SELECT * FROM no_such_table_bindery"))
            .await;
        assert_eq!(failed.0, 500, "{}", failed.1);
        assert!(!last_error(&b, "pgdown").await.is_empty());
        assert_eq!(seen.invoke(&b, "pgdown", query("SELECT 1")).await.0, 500);
        assert_hidden(&b, format, &secret, &seen).await;
        // The server answers, and refuses: no such database.
        let nodb = component(
            "pgnodb",
            "bindings.postgresql",
            &[(
                "connectionString",
                &format!("postgres://postgres:{secret}@127.0.0.1:5432/no_such_db_bindery"),
            )],
        );
        refused_at_start(format, "pgnodb", nodb, &secret).await;
    }
}

/// A MariaDB user that exists for one test.
struct MysqlUser(String);

impl MysqlUser {
    fn create(password: &str) -> Self {
        let name = format!("bindery_{}", &unique_secret("u")[2..14]);
        let sql = format!(
            "CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'; GRANT SELECT ON test.* TO '{name}'@'%';"
        );
        run("mysql", &["-uroot", "-h127.0.0.1", "-e", &sql]);
        MysqlUser(name)
    }
}

impl Drop for MysqlUser {
    fn drop(&mut self) {
        let _ = Command::new("mysql")
            .args([
                "-uroot",
                "-h127.0.0.1",
                "-e",
                &format!("DROP USER IF EXISTS '{}'@'%'", self.0),
            ])
            .status();
    }
}

#[tokio::test]
async fn mysql_passwords_in_data_source_names() {
    require(
        "MariaDB",
        3306,
        "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd",
    );
    let secret = unique_secret("my");
    let user = MysqlUser::create(&secret);
    for format in LogFormat::ALL {
        let files = [
            (
                "ok.yaml",
                component(
                    "my",
                    "bindings.mysql",
                    &[(
                        "url",
                        &format!("{}:{secret}@tcp(127.0.0.1:3306)/test", user.0),
                    )],
                ),
            ),
            (
                "down.yaml",
                component(
                    "mydown",
                    "bindings.mysql",
                    &[(
                        "url",
                        &format!("mysql://{}:{secret}@127.0.0.1:1/test?timeout=1s", user.0),
                    )],
                ),
            ),
        ];
        let b = start(format, &files).await;
        let mut seen = Seen::new();
        let query = |sql: &str| json!({"operation": "query", "metadata": {"sql": sql}});
        let ok = seen.invoke(&b, "my", query("SELECT 1")).await;
        assert_eq!(ok.0, 200, "{}", ok.1);
        assert!(!last_error(&b, "mydown").await.is_empty());
        assert_eq!(seen.invoke(&b, "mydown", query("SELECT 1")).await.0, 500);
        assert_hidden(&b, format, &secret, &seen).await;
        // root has no password: the login is refused.
        let refused = component(
            "myrefused",
            "bindings.mysql",
            &[("url", &format!("root:{secret}@tcp(127.0.0.1:3306)/test"))],
        );
        refused_at_start(format, "myrefused", refused, &secret).await;
    }
}

/// A `redis-server` of this test's own, with a password; stopped when dropped.
struct PrivateRedis(std::process::Child);

impl PrivateRedis {
    fn start(port: u16, password: &str) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--requirepass",
                password,
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not listen"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        PrivateRedis(child)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn redis_passwords() {
    let secret = unique_secret("rd");
    let port = free_port();
    let _redis = PrivateRedis::start(port, &secret);
    let host = format!("127.0.0.1:{port}");
    let wrong = format!("{secret}-wrong");
    for format in LogFormat::ALL {
        let files = [
            (
                "ok.yaml",
                component(
                    "rd",
                    "bindings.redis",
                    &[("redisHost", &host), ("redisPassword", &secret)],
                ),
            ),
            (
                "down.yaml",
                component(
                    "rddown",
                    "bindings.redis",
                    &[("redisHost", "127.0.0.1:1"), ("redisPassword", &secret)],
                ),
            ),
        ];
        let b = start(format, &files).await;
        let mut seen = Seen::new();
        let create = json!({"operation": "create", "data": "v", "metadata": {"key": "redaction"}});
        assert!(matches!(
            seen.invoke(&b, "rd", create.clone()).await.0,
            200 | 204
        ));
        let get = json!({"operation": "get", "metadata": {"key": "redaction"}});
        assert_eq!(seen.invoke(&b, "rd", get).await.0, 200);
        assert!(!last_error(&b, "rddown").await.is_empty());
        assert_eq!(seen.invoke(&b, "rddown", create.clone()).await.0, 500);
        assert_hidden(&b, format, &secret, &seen).await;
        let refused = component(
            "rdrefused",
            "bindings.redis",
            &[("redisHost", &host), ("redisPassword", &wrong)],
        );
        refused_at_start(format, "rdrefused", refused, &secret).await;
    }
}

/// A RabbitMQ user that exists for one test.
struct RabbitUser(String);

impl RabbitUser {
    fn create(password: &str) -> Self {
        let name = unique_secret("bindery");
        run("rabbitmqctl", &["-q", "add_user", &name, password]);
        run(
            "rabbitmqctl",
            &["-q", "set_permissions", "-p", "/", &name, ".*", ".*", ".*"],
        );
        RabbitUser(name)
    }
}

impl Drop for RabbitUser {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["-q", "delete_user", &self.0])
            .status();
    }
}

#[tokio::test]
async fn rabbitmq_passwords_in_amqp_urls() {
    require("RabbitMQ", 5672, "rabbitmq-server -detached");
    let secret = unique_secret("mq");
    let user = RabbitUser::create(&secret);
    let queue = unique_secret("redaction");
    for format in LogFormat::ALL {
        let md = |name: &str, url: String| {
            component(
                name,
                "bindings.rabbitmq",
                &[
                    ("host", &url),
                    ("queueName", &queue),
                    ("deleteWhenUnused", "true"),
                    ("direction", "output"),
                ],
            )
        };
        let files = [
            (
                "ok.yaml",
                md(
                    "mq",
                    format!("amqp://{}:{secret}@127.0.0.1:5672/%2f", user.0),
                ),
            ),
            (
                "refused.yaml",
                md("mqrefused", format!("amqp://guest:{secret}@127.0.0.1:5672")),
            ),
            (
                "down.yaml",
                md("mqdown", format!("amqp://{}:{secret}@127.0.0.1:1/", user.0)),
            ),
        ];
        let b = start(format, &files).await;
        let mut seen = Seen::new();
        let create = json!({"operation": "create", "data": "hello"});
        let ok = seen.invoke(&b, "mq", create.clone()).await;
        assert!(matches!(ok.0, 200 | 204), "{}", ok.1);
        for name in ["mqrefused", "mqdown"] {
            assert!(!last_error(&b, name).await.is_empty());
            assert_eq!(seen.invoke(&b, name, create.clone()).await.0, 500);
        }
        assert_hidden(&b, format, &secret, &seen).await;
    }
}

#[tokio::test]
async fn aws_secret_keys_and_session_tokens() {
    require("moto", 15000, "scripts/backends.sh");
    let secret = unique_secret("aws");
    let bucket = unique_secret("redaction");
    let queue = unique_secret("redaction");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    // moto takes unsigned calls: the bucket and the queue the bindings use.
    let r = client
        .put(format!("http://127.0.0.1:15000/{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{r:?}");
    let r = client
        .post("http://127.0.0.1:15000/")
        .header("content-type", "application/x-www-form-urlencoded")
        // moto routes by the service named in the credential scope; it checks no signature.
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDBINDERYREDACT/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=00",
        )
        .body(format!("Action=CreateQueue&QueueName={queue}"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{r:?}");
    for format in LogFormat::ALL {
        let aws = |name: &str, type_name: &str, endpoint: &str, extra: &[(&str, &str)]| {
            let mut md = vec![
                ("region", "us-east-1"),
                ("endpoint", endpoint),
                ("accessKey", "AKIDBINDERYREDACT"),
                ("secretKey", secret.as_str()),
                ("sessionToken", secret.as_str()),
            ];
            md.extend_from_slice(extra);
            component(name, type_name, &md)
        };
        let s3 = [("bucket", bucket.as_str()), ("forcePathStyle", "true")];
        let sqs = [("queueName", queue.as_str()), ("direction", "output")];
        let files = [
            (
                "s3.yaml",
                aws("s3", "bindings.aws.s3", "http://127.0.0.1:15000", &s3),
            ),
            (
                "sqs.yaml",
                aws("sqs", "bindings.aws.sqs", "http://127.0.0.1:15000", &sqs),
            ),
            (
                "s3down.yaml",
                aws("s3down", "bindings.aws.s3", "http://127.0.0.1:1", &s3),
            ),
            (
                "sqsdown.yaml",
                aws("sqsdown", "bindings.aws.sqs", "http://127.0.0.1:1", &sqs),
            ),
        ];
        let b = start(format, &files).await;
        let mut seen = Seen::new();
        let put = json!({"operation": "create", "data": "x", "metadata": {"key": "a.txt"}});
        let ok = seen.invoke(&b, "s3", put.clone()).await;
        assert_eq!(ok.0, 200, "{}", ok.1);
        let missing = json!({"operation": "get", "metadata": {"key": "missing.txt"}});
        assert_eq!(seen.invoke(&b, "s3", missing).await.0, 500);
        let send = json!({"operation": "create", "data": "x"});
        let ok = seen.invoke(&b, "sqs", send.clone()).await;
        assert!(matches!(ok.0, 200 | 204), "{}", ok.1);
        let s3down = seen.invoke(&b, "s3down", put).await;
        assert_eq!(s3down.0, 500, "{}", s3down.1);
        let sqsdown = seen.invoke(&b, "sqsdown", send).await;
        assert_eq!(sqsdown.0, 500, "{}", sqsdown.1);
        assert_hidden(&b, format, &secret, &seen).await;
    }
}

/// Azurite's well-known account key: public, and still never to be repeated.
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

#[tokio::test]
async fn azure_storage_account_keys() {
    require("Azurite", 10000, "scripts/backends.sh");
    require("Azurite", 10001, "scripts/backends.sh");
    // A key that is valid base64 and wrong: hex digits only, a multiple of four long.
    let hex: String = unique_secret("k")[2..].to_owned();
    let wrong = format!("{hex}{hex}{hex}")[..64].to_owned();
    let container = format!("redaction{}", &hex[..12]);
    for format in LogFormat::ALL {
        let blob = |name: &str, key: &str, endpoint: &str| {
            component(
                name,
                "bindings.azure.blobstorage",
                &[
                    ("accountName", "devstoreaccount1"),
                    ("accountKey", key),
                    ("containerName", &container),
                    ("endpoint", endpoint),
                ],
            )
        };
        let queue = |name: &str, key: &str| {
            component(
                name,
                "bindings.azure.storagequeues",
                &[
                    ("accountName", "devstoreaccount1"),
                    ("accountKey", key),
                    ("queueName", &container),
                    ("queueEndpoint", "http://127.0.0.1:10001"),
                    ("direction", "output"),
                ],
            )
        };
        let files = [
            (
                "blob.yaml",
                blob("blob", AZURITE_KEY, "http://127.0.0.1:10000"),
            ),
            ("queue.yaml", queue("queue", AZURITE_KEY)),
            (
                "blobdown.yaml",
                blob("blobdown", AZURITE_KEY, "http://127.0.0.1:1"),
            ),
        ];
        let b = start(format, &files).await;
        let mut seen = Seen::new();
        let put = json!({"operation": "create", "data": "x", "metadata": {"blobName": "a.txt"}});
        let ok = seen.invoke(&b, "blob", put.clone()).await;
        assert_eq!(ok.0, 200, "{}", ok.1);
        let send = json!({"operation": "create", "data": "x"});
        let ok = seen.invoke(&b, "queue", send.clone()).await;
        assert!(matches!(ok.0, 200 | 204), "{}", ok.1);
        let failed = seen.invoke(&b, "blobdown", put.clone()).await;
        assert_eq!(failed.0, 500, "{}", failed.1);
        assert_hidden(&b, format, AZURITE_KEY, &seen).await;
        // A wrong key: Azurite refuses the requests that create the container and the queue.
        let blob_refused = blob("blobwrong", &wrong, "http://127.0.0.1:10000");
        refused_at_start(format, "blobwrong", blob_refused, &wrong).await;
        refused_at_start(format, "queuewrong", queue("queuewrong", &wrong), &wrong).await;
    }
}

#[tokio::test]
async fn http_security_tokens_and_url_passwords() {
    let secret = unique_secret("tok");
    let app = TestApp::start().await;
    app.answer(
        http::Method::POST,
        "/hook",
        vec![Answer::status(200).body("ok")],
    );
    app.answer(
        http::Method::POST,
        "/refused",
        vec![Answer::status(401).body("no")],
    );
    for format in LogFormat::ALL {
        let web = |name: &str, url: String| {
            component(
                name,
                "bindings.http",
                &[
                    ("url", &url),
                    ("securityToken", &secret),
                    ("securityTokenHeader", "X-Token"),
                ],
            )
        };
        let files = [
            (
                "web.yaml",
                web(
                    "web",
                    format!("http://user:{secret}@127.0.0.1:{}/", app.port),
                ),
            ),
            (
                "down.yaml",
                web("webdown", format!("http://user:{secret}@127.0.0.1:1/")),
            ),
        ];
        let b = start(format, &files).await;
        let mut seen = Seen::new();
        let post =
            |path: &str| json!({"operation": "post", "data": "x", "metadata": {"path": path}});
        let ok = seen.invoke(&b, "web", post("hook")).await;
        assert_eq!(ok.0, 200, "{}", ok.1);
        assert_eq!(seen.invoke(&b, "web", post("refused")).await.0, 500);
        assert_eq!(seen.invoke(&b, "webdown", post("hook")).await.0, 500);
        assert_hidden(&b, format, &secret, &seen).await;
    }
    // The token did reach the endpoint, in its header.
    let calls = app.received_at(&http::Method::POST, "/hook");
    assert_eq!(calls[0].header("x-token").as_deref(), Some(secret.as_str()));
}

#[tokio::test]
async fn smtp_passwords() {
    require("aiosmtpd", 12525, "scripts/backends.sh");
    let secret = unique_secret("mail");
    for format in LogFormat::ALL {
        let mail = |name: &str, port: &str| {
            component(
                name,
                "bindings.smtp",
                &[
                    ("host", "127.0.0.1"),
                    ("port", port),
                    ("user", "mailer"),
                    ("password", &secret),
                    ("tlsMode", "none"),
                    ("emailFrom", "a@example.com"),
                    ("emailTo", "b@example.com"),
                    ("subject", "redaction"),
                ],
            )
        };
        // The sink offers no AUTH: the login is refused. Port 1: nothing listens.
        let files = [
            ("mail.yaml", mail("mail", "12525")),
            ("down.yaml", mail("maildown", "1")),
        ];
        let b = start(format, &files).await;
        let mut seen = Seen::new();
        let send = json!({"operation": "create", "data": "hi"});
        for name in ["mail", "maildown"] {
            let failed = seen.invoke(&b, name, send.clone()).await;
            assert_eq!(failed.0, 500, "{name}: {}", failed.1);
        }
        assert!(!last_error(&b, "maildown").await.is_empty());
        assert_hidden(&b, format, &secret, &seen).await;
    }
}

#[tokio::test]
async fn mqtt_and_nats_passwords_in_urls() {
    require(
        "Mosquitto",
        1883,
        "mosquitto -d -c /etc/mosquitto/mosquitto.conf",
    );
    require("NATS", 4222, "scripts/backends.sh");
    let secret = unique_secret("pw");
    let topic = unique_secret("redaction");
    for format in LogFormat::ALL {
        let mqtt = |name: &str, url: String| {
            component(
                name,
                "bindings.mqtt3",
                &[
                    ("url", &url),
                    ("topic", &topic),
                    ("consumerID", name),
                    ("direction", "output"),
                ],
            )
        };
        let nats = |name: &str, url: String| {
            component(
                name,
                "bindings.nats",
                &[
                    ("natsURL", &url),
                    ("subject", &topic),
                    ("direction", "output"),
                ],
            )
        };
        let files = [
            (
                "mqtt.yaml",
                mqtt("mqtt", format!("tcp://user:{secret}@127.0.0.1:1883")),
            ),
            (
                "mqttdown.yaml",
                mqtt("mqttdown", format!("tcp://user:{secret}@127.0.0.1:1")),
            ),
            (
                "nats.yaml",
                nats("nats", format!("nats://user:{secret}@127.0.0.1:4222")),
            ),
            (
                "natsdown.yaml",
                nats("natsdown", format!("nats://user:{secret}@127.0.0.1:1")),
            ),
        ];
        let b = start(format, &files).await;
        let mut seen = Seen::new();
        let publish = json!({"operation": "create", "data": "x"});
        for name in ["mqtt", "nats"] {
            wait_until(std::time::Duration::from_secs(20), name, || async {
                let r = b.invoke(name, publish.clone()).await;
                r.status().is_success().then_some(())
            })
            .await;
            let ok = seen.invoke(&b, name, publish.clone()).await;
            assert!(matches!(ok.0, 200 | 204), "{name}: {}", ok.1);
        }
        for name in ["mqttdown", "natsdown"] {
            assert!(!last_error(&b, name).await.is_empty());
            assert_eq!(seen.invoke(&b, name, publish.clone()).await.0, 500);
        }
        assert_hidden(&b, format, &secret, &seen).await;
    }
}
