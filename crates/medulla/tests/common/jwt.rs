//! A token issuer for the OAUTHBEARER and HTTP bearer tests: an ES256 key the test
//! generates, published in a JWKS file the broker is pointed at.

use std::time::{SystemTime, UNIX_EPOCH};

pub struct Issuer {
    key: jsonwebtoken::EncodingKey,
}

impl Issuer {
    /// A fresh ES256 key, published in `jwks` with kid `test-key`.
    pub fn new(jwks: &std::path::Path) -> Issuer {
        let pair = rcgen::KeyPair::generate().unwrap();
        let key = jsonwebtoken::EncodingKey::from_ec_der(&pair.serialize_der());
        let mut jwk =
            jsonwebtoken::jwk::Jwk::from_encoding_key(&key, jsonwebtoken::Algorithm::ES256)
                .unwrap();
        jwk.common.key_id = Some("test-key".into());
        let set = jsonwebtoken::jwk::JwkSet { keys: vec![jwk] };
        std::fs::write(jwks, serde_json::to_vec(&set).unwrap()).unwrap();
        Issuer { key }
    }

    /// A token for `sub` and audience `aud`, issued by `https://idp.test`, expiring in
    /// `exp_in_s` seconds (negative: already expired).
    pub fn token(&self, sub: &str, aud: &str, exp_in_s: i64) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some("test-key".into());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let claims = serde_json::json!({"sub": sub, "aud": aud, "iss": "https://idp.test", "iat": now, "exp": now + exp_in_s});
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}
