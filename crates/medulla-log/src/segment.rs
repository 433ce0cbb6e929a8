//! One segment: a `.log` file of batches with its `.index` and `.timeindex`.
