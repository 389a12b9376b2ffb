//! Route-netlink queries for nshelper.
//!
//! The socket and the request come from neli; the replies are decoded here from raw bytes,
//! because neli's attribute decoding loses bytes of names and does not mask `NLA_F_NESTED`.
//! The decoder is pure and bounds-checked: it runs on data from inside a target, without
//! capabilities, and must survive anything the kernel (or a hostile peer) can put in a
//! message.

#![forbid(unsafe_code)]

pub mod addrs;
mod error;
pub mod links;
pub mod names;
pub mod neighbors;
pub mod routes;
pub mod wire;

mod socket;

pub use error::NetlinkError;
pub use socket::{RawDump, RouteSocket};
