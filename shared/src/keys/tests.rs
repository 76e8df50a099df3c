use super::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

struct Counting {
    calls: AtomicUsize,
    down: AtomicBool,
}

#[async_trait::async_trait]
impl KeyProvider for Counting {
    async fn fetch(&self, request: &KeyRequest<'_>) -> KeyResult {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        if self.down.load(Ordering::SeqCst) {
            return Err(KeyError::Unreachable {
                url: request.provider.url.clone(),
                reason: "down".into(),
            });
        }
        Ok(ContentKey {
            kid: request.kid,
            key: [request.period as u8; 16],
            period: request.period,
            explicit_iv: None,
            key_uri: Some(format!("https://keys/{}", request.kid)),
            key_format: None,
            key_format_versions: None,
            systems: Vec::new(),
        })
    }
}

fn provider() -> SpekeKeyProvider {
    SpekeKeyProvider {
        url: "https://keys".into(),
        resource_id: "r".into(),
        role_arn: "arn:aws:iam::123456789012:role/k".into(),
        system_ids: vec!["81376844-f976-481e-a84e-cc25d39b0b33".into()],
        certificate_arn: None,
        encryption_contract_configuration: None,
    }
}

#[test]
fn periods_follow_media_time() {
    assert_eq!(period_of(Ticks(0), 10), 0);
    assert_eq!(period_of(Ticks(899_999), 10), 0);
    assert_eq!(period_of(Ticks(900_000), 10), 1);
    assert_eq!(period_of(Ticks(123_456_789), 0), 0);
}

#[test]
fn kids_are_stable_per_content_and_period() {
    assert_eq!(kid_for("r", None, 3), kid_for("r", None, 3));
    assert_ne!(kid_for("r", None, 3), kid_for("r", None, 4));
    assert_ne!(kid_for("r", None, 3), kid_for("s", None, 3));
    // One resource id, two schemes: two KIDs (a key is never used in CTR and CBC mode).
    assert_ne!(kid_for("r", Some("cenc"), 3), kid_for("r", Some("cbcs"), 3));
    assert_ne!(kid_for("r", Some("cenc"), 3), kid_for("r", None, 3));
    let kid = kid_for("r", None, 3).to_string();
    assert_eq!(&kid[14..15], "8", "version 8: {kid}");
}

#[tokio::test]
async fn one_request_per_period_even_when_asked_at_once() {
    let counting = Arc::new(Counting {
        calls: AtomicUsize::new(0),
        down: AtomicBool::new(false),
    });
    let keys = Keys::new(counting.clone());
    let p = provider();
    let asks = (0..8).map(|i| keys.key(&p, None, i % 2, |_| {}));
    let got = futures_util::future::join_all(asks).await;
    assert!(got.iter().all(Result::is_ok));
    assert_eq!(counting.calls.load(Ordering::SeqCst), 2);
    assert_eq!(got[1].as_ref().unwrap().kid, kid_for("r", None, 1));
}

#[tokio::test]
async fn endpoints_asking_in_another_way_never_share_a_cached_key() {
    let counting = Arc::new(Counting {
        calls: AtomicUsize::new(0),
        down: AtomicBool::new(false),
    });
    let keys = Keys::new(counting.clone());
    let v1 = provider();
    let v2 = SpekeKeyProvider {
        encryption_contract_configuration: Some(crate::model::EncryptionContractConfiguration {
            preset_speke20_audio: crate::model::AudioPreset::Shared,
            preset_speke20_video: crate::model::VideoPreset::Shared,
        }),
        ..provider()
    };
    let widevine = SpekeKeyProvider {
        system_ids: vec![system::WIDEVINE.into()],
        ..provider()
    };
    for (p, scheme) in [
        (&v1, None),
        (&v1, Some("cbcs")),
        (&v1, Some("cenc")),
        (&v2, Some("cbcs")),
        (&widevine, None),
    ] {
        keys.key(p, scheme, 3, |_| {}).await.unwrap();
        keys.key(p, scheme, 3, |_| {}).await.unwrap();
    }
    assert_eq!(
        counting.calls.load(Ordering::SeqCst),
        5,
        "one request for each way of asking"
    );
}

#[tokio::test]
async fn a_failing_provider_leaves_the_last_key_or_an_error() {
    let counting = Arc::new(Counting {
        calls: AtomicUsize::new(0),
        down: AtomicBool::new(true),
    });
    let keys = Keys::new(counting.clone());
    let p = provider();
    let errors = AtomicUsize::new(0);
    let count = |_: &KeyError| {
        errors.fetch_add(1, Ordering::SeqCst);
    };
    assert!(keys.key(&p, None, 5, count).await.is_err(), "no key was ever obtained");
    assert!(keys.key(&p, None, 5, count).await.is_err());
    assert_eq!(
        counting.calls.load(Ordering::SeqCst),
        1,
        "not asked again within a second"
    );
    assert_eq!(errors.load(Ordering::SeqCst), 1);
    counting.down.store(false, Ordering::SeqCst);
    let six = keys.key(&p, None, 6, count).await.unwrap();
    counting.down.store(true, Ordering::SeqCst);
    let seven = keys.key(&p, None, 7, count).await.unwrap();
    assert_eq!(seven, six, "the last key stands in");
    assert_eq!(keys.key(&p, None, 6, count).await.unwrap(), six, "cached");
    assert!(
        keys.key(&p, None, 4, count).await.is_err(),
        "no stand-in for an earlier period"
    );
    counting.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(RETRY_AFTER).await;
    assert_eq!(
        keys.key(&p, None, 7, count).await.unwrap(),
        six,
        "period 7 keeps naming the key it named"
    );
    assert_eq!(
        keys.exact(&p, None, 6, count).await.unwrap(),
        six,
        "the segment names 6"
    );
    let own = keys.exact(&p, None, 7, count).await.unwrap();
    assert_eq!(
        (own.period, own.kid),
        (7, kid_for("r", None, 7)),
        "another instance's k7 segment gets 7's key"
    );
    assert_eq!(keys.key(&p, None, 8, count).await.unwrap().period, 8);
}
