//! The storage contract against S3 + DynamoDB in moto (`tests/e2e/moto_serial.py`, which
//! the test command's Python environment can run). Without moto on this machine the test
//! says so and passes, unless `SLUICE_REQUIRE_MOTO=1` (the test command sets it).
use super::*;
use std::process::{Child, Command, Stdio};

struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_moto() -> Option<(Moto, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/e2e/moto_serial.py");
    let child = Command::new("python3")
        .args([script, "-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut moto = Moto(child);
    for _ in 0..150 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((moto, format!("http://127.0.0.1:{port}")));
        }
        if moto.0.try_wait().ok().flatten().is_some() {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    None
}

#[tokio::test]
async fn aws_index_meets_the_contract_on_moto() {
    let Some((_moto, endpoint)) = start_moto() else {
        assert!(
            std::env::var("SLUICE_REQUIRE_MOTO").as_deref() != Ok("1"),
            "SLUICE_REQUIRE_MOTO=1 but moto could not be started (python3 with moto[server])"
        );
        eprintln!("moto is not available here: the AWS adapter contract test did not run");
        return;
    };
    let creds = aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "test");
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(endpoint)
        .load()
        .await;
    let store = AwsStore::new(
        &sdk,
        AwsConfig {
            bucket: "contract".into(),
            catalog_table: "contract-catalog".into(),
            segments_table: "contract-segments".into(),
            segment_ttl_seconds: 3600,
        },
    );
    store.create_resources().await.unwrap();
    super::super::contract::index_contract(&store).await;
    store
        .put("ch/ie/360p/0.ts", Bytes::from_static(b"abc"), "video/mp2t")
        .await
        .unwrap();
    assert_eq!(
        store.get("ch/ie/360p/0.ts").await.unwrap(),
        Some(Bytes::from_static(b"abc"))
    );
    assert_eq!(store.get("ch/ie/360p/1.ts").await.unwrap(), None);
}
