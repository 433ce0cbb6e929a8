//! Kafka's `ssl.principal.mapping.rules`: a client certificate's subject to a principal.
//!
//! The subject is printed as Java's `X500Principal.getName()` prints it (RFC 2253: the
//! relative distinguished names in reverse of their order in the certificate, so
//! `CN=alice,OU=Lab,O=Clinic,C=US`), then the rules are tried in order as Kafka's
//! `SslPrincipalMapper` does: `RULE:pattern/replacement/[LU]` applies when `pattern`
//! matches the whole name, `DEFAULT` takes the name as it is. No rule applying is an
//! authentication failure, as in Kafka.
//!
//! Patterns are Rust `regex` syntax, which for the patterns people write (groups,
//! classes, lazy quantifiers) reads as Java's does; back-references and look-around,
//! which Java has and `regex` has not, are refused when the rules are parsed.
//!
//! The subject is read from DER with `x509-parser` (rusticata's, maintained and
//! fuzzed): it gives each attribute's type and raw string value in certificate order,
//! which is what printing Java's form needs.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

use crate::Principal;

/// The longest rules string accepted (rules come from configuration, not clients).
const RULES_BYTES_MAX: usize = 64 * 1024;

/// Why the rules or a mapping failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// `ssl.principal.mapping.rules` does not parse.
    #[error("invalid ssl.principal.mapping.rules: {0}")]
    InvalidRule(String),
    /// No rule applies to the name (Kafka's `NoMatchingRule`).
    #[error("no ssl.principal.mapping.rules apply to {name}, rules {rules}")]
    NoMatchingRule {
        /// The distinguished name.
        name: String,
        /// The rules, as Kafka prints them.
        rules: String,
    },
    /// The certificate cannot be parsed.
    #[error("cannot read the client certificate's subject: {0}")]
    BadCertificate(String),
}

/// One rule.
#[derive(Debug, Clone)]
enum Rule {
    Default,
    Replace {
        /// As written (for display).
        pattern: String,
        /// `^(?:pattern)$`: Java's `Matcher.matches()`.
        whole: Regex,
        /// The pattern unanchored, for the replace-all Kafka does after the match.
        any: Regex,
        replacement: String,
        lower: bool,
        upper: bool,
    },
}

/// Parsed `ssl.principal.mapping.rules`.
#[derive(Debug, Clone)]
pub struct SslPrincipalMapper {
    rules: Vec<Rule>,
}

// Kafka's own grammar (SslPrincipalMapper.RULE_PATTERN), which `regex` reads alike.
const RULE_PATTERN: &str = r"(DEFAULT)|RULE:((\\.|[^\\/])*)/((\\.|[^\\/])*)/([LU]?).*?|(.*?)";

static RULE_SPLITTER: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(&format!(r"\s*({RULE_PATTERN})\s*(,\s*|$)")).ok());
static RULE_PARSER: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(&format!("^(?:{RULE_PATTERN})")).ok());

impl SslPrincipalMapper {
    /// Parses the rules (`DEFAULT`, Kafka's default, when `None`).
    pub fn from_rules(rules: Option<&str>) -> Result<SslPrincipalMapper, MappingError> {
        let rules = rules.unwrap_or("DEFAULT");
        if rules.len() > RULES_BYTES_MAX {
            return Err(MappingError::InvalidRule(format!(
                "longer than {RULES_BYTES_MAX} bytes"
            )));
        }
        let (Some(splitter), Some(parser)) = (&*RULE_SPLITTER, &*RULE_PARSER) else {
            return Err(MappingError::InvalidRule(
                "rule grammar failed to compile".into(),
            ));
        };
        let mut parsed = Vec::new();
        for found in splitter.captures_iter(rules.trim()) {
            let rule = found.get(1).map_or("", |m| m.as_str());
            let Some(m) = parser.captures(rule) else {
                return Err(MappingError::InvalidRule(format!("Invalid rule: {rule}")));
            };
            let end = m.get(0).map_or(0, |g| g.end());
            if end != rule.len() {
                return Err(MappingError::InvalidRule(format!(
                    "Invalid rule: `{rule}`, unmatched substring: `{}`",
                    &rule[end..]
                )));
            }
            if m.get(1).is_some() {
                parsed.push(Rule::Default);
            } else if let Some(pattern) = m.get(2) {
                let pattern = pattern.as_str().to_owned();
                let compile = |p: &str| {
                    Regex::new(p)
                        .map_err(|e| MappingError::InvalidRule(format!("pattern {pattern:?}: {e}")))
                };
                let flag = m.get(6).map_or("", |g| g.as_str());
                parsed.push(Rule::Replace {
                    whole: compile(&format!("^(?:{pattern})$"))?,
                    any: compile(&pattern)?,
                    replacement: m.get(4).map_or("", |g| g.as_str()).to_owned(),
                    lower: flag == "L",
                    upper: flag == "U",
                    pattern,
                });
            }
            // An empty rule (between two commas) is ignored, as in Kafka.
        }
        Ok(SslPrincipalMapper { rules: parsed })
    }

    /// The name the first applying rule gives `distinguished_name`.
    pub fn name(&self, distinguished_name: &str) -> Result<String, MappingError> {
        for rule in &self.rules {
            if let Some(name) = rule.apply(distinguished_name) {
                return Ok(name);
            }
        }
        Err(MappingError::NoMatchingRule {
            name: distinguished_name.to_owned(),
            rules: self.to_string(),
        })
    }
}

impl Rule {
    fn apply(&self, dn: &str) -> Option<String> {
        let Rule::Replace {
            whole,
            any,
            replacement,
            lower,
            upper,
            ..
        } = self
        else {
            return Some(dn.to_owned());
        };
        if !whole.is_match(dn) {
            return None;
        }
        let groups = any.captures_len() - 1;
        let result = any
            .replace_all(dn, |caps: &regex::Captures<'_>| {
                expand_java_replacement(replacement, caps, groups)
            })
            .into_owned();
        Some(if *lower {
            result.to_lowercase()
        } else if *upper {
            result.to_uppercase()
        } else {
            result
        })
    }
}

/// Expands a replacement as Java's `Matcher.appendReplacement` does after Kafka's
/// `escapeLiteralBackReferences`: `\c` is a literal `c`; `$n` takes as many digits as
/// name an existing group (`$12` with 3 groups is group 1 then `2`); a `$n` naming no
/// group at all stays literal text.
fn expand_java_replacement(template: &str, caps: &regex::Captures<'_>, groups: usize) -> String {
    let mut out = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            '$' => match chars.peek().and_then(|d| d.to_digit(10)) {
                Some(first) if (first as usize) <= groups => {
                    chars.next();
                    let mut index = first as usize;
                    while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                        let longer = index * 10 + d as usize;
                        if longer > groups {
                            break;
                        }
                        index = longer;
                        chars.next();
                    }
                    out.push_str(caps.get(index).map_or("", |m| m.as_str()));
                }
                _ => out.push('$'),
            },
            c => out.push(c),
        }
    }
    out
}

impl fmt::Display for SslPrincipalMapper {
    /// Kafka's `toString` of the rule list: `[RULE:pattern/replacement/L, DEFAULT]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, rule) in self.rules.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            match rule {
                Rule::Default => write!(f, "DEFAULT")?,
                Rule::Replace {
                    pattern,
                    replacement,
                    lower,
                    upper,
                    ..
                } => {
                    write!(f, "RULE:{pattern}/{replacement}")?;
                    if *lower {
                        write!(f, "/L")?;
                    } else if *upper {
                        write!(f, "/U")?;
                    }
                }
            }
        }
        write!(f, "]")
    }
}

/// The principal of a client certificate (DER): `User:` and the mapped subject.
pub fn principal_from_cert(
    der: &[u8],
    mapper: &SslPrincipalMapper,
) -> Result<Principal, MappingError> {
    let name = subject_rfc2253(der)?;
    Ok(Principal::user(mapper.name(&name)?))
}

/// The certificate's subject as Java's `X500Principal.getName()` (RFC 2253) prints it.
pub fn subject_rfc2253(der: &[u8]) -> Result<String, MappingError> {
    use x509_parser::prelude::FromDer;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der)
        .map_err(|e| MappingError::BadCertificate(e.to_string()))?;
    let rdns: Vec<String> = cert
        .subject()
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|ava| {
                    let oid = ava.attr_type().to_id_string();
                    let value = ava.attr_value();
                    let keyword = rfc2253_keyword(&oid);
                    let text = decode_string(value.header.tag().0, value.data);
                    match (keyword, text) {
                        (Some(k), Some(text)) => format!("{k}={}", escape_value(&text)),
                        // Java: a dotted type or a non-string value prints as `#` and the
                        // hex of the value's DER encoding.
                        (k, _) => format!(
                            "{}=#{}",
                            k.unwrap_or(&oid),
                            hex(&der_tlv(
                                value.header.class() as u8,
                                value.header.is_constructed(),
                                value.header.tag().0,
                                value.data
                            ))
                        ),
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    Ok(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

/// The attribute types RFC 2253 (and so Java's `getName()`) names by keyword.
fn rfc2253_keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// The text of a DER string value of the kinds Java prints as text.
fn decode_string(tag: u32, data: &[u8]) -> Option<String> {
    match tag {
        // UTF8String
        12 => std::str::from_utf8(data).ok().map(str::to_owned),
        // PrintableString, IA5String
        19 | 22 => data
            .is_ascii()
            .then(|| String::from_utf8_lossy(data).into_owned()),
        // TeletexString (T61), GeneralString: Java reads them as ISO-8859-1.
        20 | 27 => Some(data.iter().map(|&b| char::from(b)).collect()),
        // BMPString: UTF-16BE.
        30 => {
            if !data.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// RFC 2253 escaping as Java's `AVA.toRFC2253String` does it.
fn escape_value(text: &str) -> String {
    const SPECIAL: &str = ",=+<>#;\"\\";
    let chars: Vec<char> = text.chars().collect();
    let lead = chars
        .iter()
        .position(|c| *c != ' ' && *c != '\r')
        .unwrap_or(chars.len());
    let trail = chars
        .iter()
        .rposition(|c| *c != ' ' && *c != '\r')
        .map_or(0, |i| i + 1);
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == '\0' {
            out.push_str("\\00");
            continue;
        }
        if SPECIAL.contains(c) || i < lead || i >= trail {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn der_tlv(class: u8, constructed: bool, tag: u32, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 6);
    let first = (class << 6) | if constructed { 0x20 } else { 0 };
    if tag < 31 {
        out.push(first | tag as u8);
    } else {
        out.push(first | 0x1f);
        let mut groups = Vec::new();
        let mut t = tag;
        loop {
            groups.push((t & 0x7f) as u8);
            t >>= 7;
            if t == 0 {
                break;
            }
        }
        for (i, g) in groups.iter().rev().enumerate() {
            out.push(if i + 1 < groups.len() { g | 0x80 } else { *g });
        }
    }
    let len = data.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(data);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapper(rules: &str) -> SslPrincipalMapper {
        SslPrincipalMapper::from_rules(Some(rules)).unwrap()
    }

    // Kafka's SslPrincipalMapperTest, case for case.
    #[test]
    fn valid_rules() {
        for rules in [
            "DEFAULT",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, DEFAULT",
            "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/",
            "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L",
            "RULE:^cn=(.?),ou=(.?),dc=(.?),dc=(.?)$/$1@$2/U",
            "RULE:^CN=([^,ADEFLTU,]+)(,.*|$)/$1/",
            "RULE:^CN=([^,DEFAULT,]+)(,.*|$)/$1/",
        ] {
            SslPrincipalMapper::from_rules(Some(rules)).unwrap();
        }
    }

    #[test]
    fn invalid_rules() {
        for rules in [
            "default",
            "DEFAUL",
            "DEFAULT/L",
            "DEFAULT/U",
            "RULE:CN=(.*?),OU=ServiceUsers.*/$1",
            "rule:^CN=(.*?),OU=ServiceUsers.*$/$1/",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L/U",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/L",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/U",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/LU",
        ] {
            assert!(
                SslPrincipalMapper::from_rules(Some(rules)).is_err(),
                "{rules} should be refused"
            );
        }
    }

    #[test]
    fn kafkas_mapping_examples() {
        let m = mapper(
            &[
                "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L",
                "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L",
                "RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U",
                "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U",
                "DEFAULT",
            ]
            .join(", "),
        );
        for (dn, name) in [
            ("CN=Duke,OU=ServiceUsers,O=Org,C=US", "duke"),
            ("CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US", "duke@sme"),
            ("cn=duke,ou=sme,dc=mycp,dc=com", "DUKE@SME"),
            ("cN=duke,OU=JavaSoft,O=Sun Microsystems", "DUKE"),
            (
                "OU=JavaSoft,O=Sun Microsystems,C=US",
                "OU=JavaSoft,O=Sun Microsystems,C=US",
            ),
        ] {
            assert_eq!(m.name(dn).unwrap(), name, "{dn}");
        }
    }

    #[test]
    fn rules_split_as_kafka_splits_them() {
        for (expected, rules) in [
            ("[]", ""),
            ("[DEFAULT]", "DEFAULT"),
            ("[RULE:/]", "RULE://"),
            ("[RULE:/.*]", "RULE:/.*/"),
            ("[RULE:/.*/L]", "RULE:/.*/L"),
            ("[RULE:/, DEFAULT]", "RULE://,DEFAULT"),
            ("[RULE:/, DEFAULT]", "  RULE:// ,  DEFAULT  "),
            (
                "[RULE:   /     , DEFAULT]",
                "  RULE:   /     / ,  DEFAULT  ",
            ),
            (
                "[RULE:  /     /U, DEFAULT]",
                "  RULE:  /     /U   ,DEFAULT  ",
            ),
            (
                "[RULE:([A-Z]*)/$1/U, RULE:([a-z]+)/$1, DEFAULT]",
                "  RULE:([A-Z]*)/$1/U   ,RULE:([a-z]+)/$1/,   DEFAULT  ",
            ),
            ("[]", ",   , , ,      , , ,   "),
            ("[RULE:/, DEFAULT]", ",,RULE://,,,DEFAULT,,"),
            (
                "[RULE: /   , DEFAULT]",
                ",  , RULE: /   /    ,,,   DEFAULT, ,   ",
            ),
            (
                "[RULE:   /  /U, DEFAULT]",
                "     ,  , RULE:   /  /U    ,,  ,DEFAULT, ,",
            ),
            (r"[RULE:\/\\\(\)\n\t/\/\/]", r"RULE:\/\\\(\)\n\t/\/\//"),
            (
                r"[RULE:\**\/+/*/L, RULE:\/*\**/**]",
                r"RULE:\**\/+/*/L,RULE:\/*\**/**/",
            ),
        ] {
            // Some of Kafka's patterns here are not valid regexes for either engine's
            // compiler until matched (Java compiles them too); compare the split only.
            match SslPrincipalMapper::from_rules(Some(rules)) {
                Ok(m) => assert_eq!(m.to_string(), expected, "{rules:?}"),
                Err(MappingError::InvalidRule(why)) => {
                    assert!(why.contains("pattern"), "{rules:?}: {why}")
                }
                Err(e) => panic!("{rules:?}: {e}"),
            }
        }
    }

    #[test]
    fn comma_with_whitespace() {
        let m = mapper(r"RULE:^CN=((\\, *|\w)+)(,.*|$)/$1/,DEFAULT");
        assert_eq!(
            m.name(r"CN=Tkac\, Adam,OU=ITZ,DC=geodis,DC=cz").unwrap(),
            r"Tkac\, Adam"
        );
    }

    #[test]
    fn no_matching_rule_is_an_error_and_back_references_past_the_groups_are_literal() {
        let m = mapper("RULE:^CN=(.*?),O=Clinic$/$1$2$12/");
        assert_eq!(m.name("CN=alice,O=Clinic").unwrap(), "alice$2alice2");
        assert!(matches!(
            m.name("CN=alice,O=Other"),
            Err(MappingError::NoMatchingRule { .. })
        ));
    }

    fn cert_with(subject: &[(rcgen::DnType, &str)]) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        for (t, v) in subject {
            dn.push(t.clone(), *v);
        }
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn subject_prints_as_java_does_and_maps_to_a_principal() {
        use rcgen::DnType;
        let der = cert_with(&[
            (DnType::CountryName, "US"),
            (DnType::OrganizationName, "Clinic"),
            (DnType::OrganizationalUnitName, "Lab"),
            (DnType::CommonName, "alice"),
        ]);
        assert_eq!(
            subject_rfc2253(&der).unwrap(),
            "CN=alice,OU=Lab,O=Clinic,C=US"
        );
        let m = mapper("RULE:^CN=([^,]+),OU=Lab,.*$/$1/L,DEFAULT");
        assert_eq!(
            principal_from_cert(&der, &m).unwrap(),
            Principal::user("alice")
        );
        let odd = cert_with(&[
            (DnType::OrganizationName, "Smith, Jones + Co"),
            (DnType::CommonName, " bob#1 "),
        ]);
        assert_eq!(
            subject_rfc2253(&odd).unwrap(),
            r"CN=\ bob\#1\ ,O=Smith\, Jones \+ Co"
        );
        let email = cert_with(&[
            (
                DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
                "a@b",
            ),
            (DnType::CommonName, "carol"),
        ]);
        // Java prints types without an RFC 2253 keyword as the OID and the DER as hex.
        assert_eq!(
            subject_rfc2253(&email).unwrap(),
            "CN=carol,1.2.840.113549.1.9.1=#0c03614062"
        );
        assert!(matches!(
            subject_rfc2253(b"not a certificate"),
            Err(MappingError::BadCertificate(_))
        ));
    }
}
