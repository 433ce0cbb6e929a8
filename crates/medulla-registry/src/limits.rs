//! The registry's limits: each has a name (its config key) and a default.

/// Limits on what one request can make the registry hold.
#[derive(Clone, Debug)]
pub struct Limits {
    /// `registry.request.max.bytes`: an HTTP body larger than this is 413.
    pub request_bytes_max: usize,
    /// `registry.schema.max.bytes`: a schema text larger than this is 42209. Below
    /// `_schemas`' default `max.message.bytes` (1 MiB) with room for the record's
    /// other fields.
    pub schema_bytes_max: usize,
    /// `registry.references.max`: dependencies (transitive) of one schema.
    pub references_max: usize,
    /// `registry.reference.depth.max`: how deep references may nest.
    pub reference_depth_max: usize,
    /// `registry.subject.versions.max`: versions one subject may have.
    pub versions_per_subject_max: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            request_bytes_max: 2 * 1024 * 1024,
            schema_bytes_max: 900 * 1024,
            references_max: 256,
            reference_depth_max: 32,
            versions_per_subject_max: 10_000,
        }
    }
}

/// Limits of the DEK Registry (`/dek-registry/v1`, see `crate::dek`).
#[derive(Clone, Debug)]
pub struct DekLimits {
    /// `dek.registry.max.keys` (Confluent's key and default): KEKs, and DEKs, one
    /// registry may hold, soft-deleted ones included; one more is 40972.
    pub keys_max: usize,
    /// A KEK name's length in characters (Confluent's `NAME_MAX_LENGTH`).
    pub name_chars_max: usize,
    /// A DEK subject's length in bytes (the schema registry's subject limit).
    pub subject_bytes_max: usize,
    /// `kmsKeyId` (an ARN, a key URI) in bytes.
    pub kms_key_id_bytes_max: usize,
    /// `kmsProps`: how many entries, and each key or value in bytes.
    pub kms_props_max: usize,
    pub kms_prop_bytes_max: usize,
    /// `doc` in bytes.
    pub doc_bytes_max: usize,
    /// `encryptedKeyMaterial` (base64 of a KMS-wrapped 16–64 byte key) in bytes. AWS
    /// KMS ciphertext blobs are at most 6144 bytes, 8192 in base64.
    pub key_material_bytes_max: usize,
}

impl Default for DekLimits {
    fn default() -> DekLimits {
        DekLimits {
            keys_max: 10_000,
            name_chars_max: 64,
            subject_bytes_max: 2048,
            kms_key_id_bytes_max: 2048,
            kms_props_max: 64,
            kms_prop_bytes_max: 4096,
            doc_bytes_max: 8192,
            key_material_bytes_max: 8192,
        }
    }
}
