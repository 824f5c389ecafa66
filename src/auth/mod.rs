//! Signed tokens for links we send (email links, OAuth state).

pub mod links;
