//! Engine fault tests: filled in below.
