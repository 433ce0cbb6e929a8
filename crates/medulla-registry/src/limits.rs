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
