//! Reproducible, content-addressed OCI tar layers: entries, gzip/zstd, digests, blob store
