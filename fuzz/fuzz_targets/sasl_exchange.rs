//! Fuzz target: the SASL mechanisms' server side (`medulla_auth::sasl`) on arbitrary
//! client messages — what a client sends in SaslAuthenticate before it is anyone.
//!
//! Input layout: one control byte, then the client's messages separated by 0xFF (a byte
//! no SASL message of these mechanisms holds).
//! - bits 0-1: the mechanism (0 PLAIN, 1 SCRAM-SHA-256, 2 SCRAM-SHA-512, 3 OAUTHBEARER).
//!
//! Users: `alice` (SCRAM, both hashes, password `pw`) and `bob` (PLAIN static, `pw`);
//! OAUTHBEARER validates against an empty key set, so every token fails after parsing.
//! Nothing may panic: a bad message is an error answer, and every exchange ends.
#![no_main]

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use medulla_auth::credentials::{CredentialStore, ScramMechanism};
use medulla_auth::jwt::{JwtConfig, JwtValidator};
use medulla_auth::sasl::{Sasl, Step};

fn sasl() -> &'static Sasl {
    static SASL: OnceLock<Sasl> = OnceLock::new();
    SASL.get_or_init(|| {
        let store = CredentialStore::in_memory();
        for m in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
            store.upsert_password("alice", m, "pw", 4096).expect("user");
        }
        let jwks = std::env::temp_dir().join(format!("medulla-fuzz-jwks-{}.json", std::process::id()));
        std::fs::write(&jwks, br#"{"keys":[]}"#).expect("jwks file");
        let jwt = JwtValidator::new(JwtConfig::new(format!("file://{}", jwks.display())))
            .expect("validator");
        let mechanisms: Vec<String> = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        Sasl::new(
            &mechanisms,
            Arc::new(store),
            BTreeMap::from([("bob".to_owned(), "pw".to_owned())]),
            Some(Arc::new(jwt)),
        )
        .expect("sasl")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else { return };
    let name = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"][usize::from(control & 3)];
    let Some(mut exchange) = sasl().start(name) else { return };
    for message in rest.split(|b| *b == 0xFF).take(8) {
        match exchange.step(message) {
            Ok(Step::Challenge(_)) => {}
            Ok(Step::Done(_)) | Err(_) => return,
        }
    }
});
