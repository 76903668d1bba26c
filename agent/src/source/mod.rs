//! Where releases come from: git repositories (and plain directories, offline).
