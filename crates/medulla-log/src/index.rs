//! Sparse offset and time indexes of one segment.
