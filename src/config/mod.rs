//! rex's config files, in xl cfg syntax: policy files and scenarios.
