//! The IANA registries the SSRF guard applies, written out entry by entry with the
//! registry's own names, so a review compares them line by line with
//! <https://www.iana.org/assignments/iana-ipv4-special-registry/> and
//! <https://www.iana.org/assignments/iana-ipv6-special-registry/>.
//!
//! The special-purpose registries do not list multicast or the IPv6 space IANA has not
//! allocated for global unicast; those come from the address-space registries
//! (<https://www.iana.org/assignments/ipv4-address-space/>,
//! <https://www.iana.org/assignments/ipv6-address-space/>).

use std::net::{Ipv4Addr, Ipv6Addr};

/// The registry's "Globally Reachable" column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// `True`.
    Global,
    /// `False`.
    NotGlobal,
    /// `N/A` (6to4, Teredo and the deprecated 6to4 relay anycast: the registry vouches
    /// for no reachability, so the guard treats them as not global).
    NotApplicable,
}

/// One entry of a registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<A> {
    /// First address of the block.
    pub addr: A,
    /// Prefix length.
    pub len: u8,
    /// The registry's name for the block.
    pub name: &'static str,
    /// Where it is defined.
    pub rfc: &'static str,
    /// Whether the registry marks it globally reachable.
    pub reach: Reach,
}

use Reach::{Global, NotApplicable as NA, NotGlobal as No};

#[allow(clippy::too_many_arguments)]
const fn v4(
    a: u8,
    b: u8,
    c: u8,
    d: u8,
    len: u8,
    name: &'static str,
    rfc: &'static str,
    reach: Reach,
) -> Entry<Ipv4Addr> {
    Entry { addr: Ipv4Addr::new(a, b, c, d), len, name, rfc, reach }
}

const fn v6(s: [u16; 8], len: u8, name: &'static str, rfc: &'static str, reach: Reach) -> Entry<Ipv6Addr> {
    Entry { addr: Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]), len, name, rfc, reach }
}

/// Name of the IPv4 special-purpose registry.
pub const V4_SPECIAL_NAME: &str = "IANA IPv4 Special-Purpose Address Registry";
/// Name of the IPv6 special-purpose registry.
pub const V6_SPECIAL_NAME: &str = "IANA IPv6 Special-Purpose Address Registry";
/// Name of the IPv4 address-space registry.
pub const V4_SPACE_NAME: &str = "IANA IPv4 Address Space Registry";
/// Name of the IPv6 address-space registry.
pub const V6_SPACE_NAME: &str = "IANA IPv6 Address Space Registry";

/// IANA IPv4 Special-Purpose Address Registry.
#[rustfmt::skip]
pub const V4_SPECIAL: &[Entry<Ipv4Addr>] = &[
    v4(0, 0, 0, 0, 8, "\"This network\"", "RFC 791", No),
    v4(0, 0, 0, 0, 32, "\"This host on this network\"", "RFC 1122", No),
    v4(10, 0, 0, 0, 8, "Private-Use", "RFC 1918", No),
    v4(100, 64, 0, 0, 10, "Shared Address Space", "RFC 6598", No),
    v4(127, 0, 0, 0, 8, "Loopback", "RFC 1122", No),
    v4(169, 254, 0, 0, 16, "Link Local", "RFC 3927", No),
    v4(172, 16, 0, 0, 12, "Private-Use", "RFC 1918", No),
    v4(192, 0, 0, 0, 24, "IETF Protocol Assignments", "RFC 6890", No),
    v4(192, 0, 0, 0, 29, "IPv4 Service Continuity Prefix", "RFC 7335", No),
    v4(192, 0, 0, 8, 32, "IPv4 dummy address", "RFC 7600", No),
    v4(192, 0, 0, 9, 32, "Port Control Protocol Anycast", "RFC 7723", Global),
    v4(192, 0, 0, 10, 32, "Traversal Using Relays around NAT Anycast", "RFC 8155", Global),
    v4(192, 0, 0, 170, 32, "NAT64/DNS64 Discovery", "RFC 8880", No),
    v4(192, 0, 0, 171, 32, "NAT64/DNS64 Discovery", "RFC 8880", No),
    v4(192, 0, 2, 0, 24, "Documentation (TEST-NET-1)", "RFC 5737", No),
    v4(192, 31, 196, 0, 24, "AS112-v4", "RFC 7535", Global),
    v4(192, 52, 193, 0, 24, "AMT", "RFC 7450", Global),
    v4(192, 88, 99, 0, 24, "Deprecated (6to4 Relay Anycast)", "RFC 7526", NA),
    v4(192, 88, 99, 2, 32, "6a44-relay anycast address", "RFC 6751", No),
    v4(192, 168, 0, 0, 16, "Private-Use", "RFC 1918", No),
    v4(192, 175, 48, 0, 24, "Direct Delegation AS112 Service", "RFC 7534", Global),
    v4(198, 18, 0, 0, 15, "Benchmarking", "RFC 2544", No),
    v4(198, 51, 100, 0, 24, "Documentation (TEST-NET-2)", "RFC 5737", No),
    v4(203, 0, 113, 0, 24, "Documentation (TEST-NET-3)", "RFC 5737", No),
    v4(240, 0, 0, 0, 4, "Reserved", "RFC 1112", No),
    v4(255, 255, 255, 255, 32, "Limited Broadcast", "RFC 8190", No),
];

/// The part of the IANA IPv4 Address Space Registry that is not unicast (240/4 is in the
/// special-purpose registry already).
#[rustfmt::skip]
pub const V4_SPACE: &[Entry<Ipv4Addr>] = &[
    v4(224, 0, 0, 0, 4, "Multicast", "RFC 5771", No),
];

/// IANA IPv6 Special-Purpose Address Registry.
#[rustfmt::skip]
pub const V6_SPECIAL: &[Entry<Ipv6Addr>] = &[
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128, "Loopback Address", "RFC 4291", No),
    v6([0, 0, 0, 0, 0, 0, 0, 0], 128, "Unspecified Address", "RFC 4291", No),
    v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96, "IPv4-mapped Address", "RFC 4291", No),
    v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96, "IPv4-IPv6 Translat.", "RFC 6052", Global),
    v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, "IPv4-IPv6 Translat.", "RFC 8215", No),
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64, "Discard-Only Address Block", "RFC 6666", No),
    v6([0x100, 0, 0, 1, 0, 0, 0, 0], 64, "Dummy IPv6 Prefix", "RFC 9780", No),
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, "IETF Protocol Assignments", "RFC 2928", No),
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, "TEREDO", "RFC 4380", NA),
    v6([0x2001, 1, 0, 0, 0, 0, 0, 1], 128, "Port Control Protocol Anycast", "RFC 7723", Global),
    v6([0x2001, 1, 0, 0, 0, 0, 0, 2], 128, "Traversal Using Relays around NAT Anycast", "RFC 8155", Global),
    v6([0x2001, 1, 0, 0, 0, 0, 0, 3], 128, "DNS-SD Service Registration Protocol Anycast", "RFC 9665", Global),
    v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48, "Benchmarking", "RFC 5180", No),
    v6([0x2001, 3, 0, 0, 0, 0, 0, 0], 32, "AMT", "RFC 7450", Global),
    v6([0x2001, 4, 0x112, 0, 0, 0, 0, 0], 48, "AS112-v6", "RFC 7535", Global),
    v6([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28, "Deprecated (previously ORCHID)", "RFC 4843", No),
    v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28, "ORCHIDv2", "RFC 7343", Global),
    v6([0x2001, 0x30, 0, 0, 0, 0, 0, 0], 28, "Drone Remote ID Protocol Entity Tags (DETs) Prefix", "RFC 9374", Global),
    v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, "Documentation", "RFC 3849", No),
    v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16, "6to4", "RFC 3056", NA),
    v6([0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0], 48, "Direct Delegation AS112 Service", "RFC 7534", Global),
    v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, "Documentation", "RFC 9637", No),
    v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16, "Segment Routing (SRv6) SIDs", "RFC 9602", No),
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "Unique-Local", "RFC 4193", No),
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "Link-Local Unicast", "RFC 4291", No),
];

/// IANA IPv6 Address Space Registry: only 2000::/3 is allocated for global unicast.
#[rustfmt::skip]
pub const V6_SPACE: &[Entry<Ipv6Addr>] = &[
    v6([0x0000, 0, 0, 0, 0, 0, 0, 0], 8, "Reserved by IETF", "RFC 4291", No),
    v6([0x0100, 0, 0, 0, 0, 0, 0, 0], 8, "Reserved by IETF", "RFC 4291", No),
    v6([0x0200, 0, 0, 0, 0, 0, 0, 0], 7, "Reserved by IETF", "RFC 4048", No),
    v6([0x0400, 0, 0, 0, 0, 0, 0, 0], 6, "Reserved by IETF", "RFC 4291", No),
    v6([0x0800, 0, 0, 0, 0, 0, 0, 0], 5, "Reserved by IETF", "RFC 4291", No),
    v6([0x1000, 0, 0, 0, 0, 0, 0, 0], 4, "Reserved by IETF", "RFC 4291", No),
    v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3, "Global Unicast", "RFC 4291", Global),
    v6([0x4000, 0, 0, 0, 0, 0, 0, 0], 3, "Reserved by IETF", "RFC 4291", No),
    v6([0x6000, 0, 0, 0, 0, 0, 0, 0], 3, "Reserved by IETF", "RFC 4291", No),
    v6([0x8000, 0, 0, 0, 0, 0, 0, 0], 3, "Reserved by IETF", "RFC 4291", No),
    v6([0xa000, 0, 0, 0, 0, 0, 0, 0], 3, "Reserved by IETF", "RFC 4291", No),
    v6([0xc000, 0, 0, 0, 0, 0, 0, 0], 3, "Reserved by IETF", "RFC 4291", No),
    v6([0xe000, 0, 0, 0, 0, 0, 0, 0], 4, "Reserved by IETF", "RFC 4291", No),
    v6([0xf000, 0, 0, 0, 0, 0, 0, 0], 5, "Reserved by IETF", "RFC 4291", No),
    v6([0xf800, 0, 0, 0, 0, 0, 0, 0], 6, "Reserved by IETF", "RFC 4291", No),
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "Unique Local Unicast", "RFC 4193", No),
    v6([0xfe00, 0, 0, 0, 0, 0, 0, 0], 9, "Reserved by IETF", "RFC 4291", No),
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "Link-Scoped Unicast", "RFC 4291", No),
    v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, "Reserved by IETF", "RFC 3879", No),
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "Multicast", "RFC 4291", No),
];

/// The translation prefix whose embedded IPv4 address (the last 32 bits) decides: the
/// registry marks it globally reachable, so it passes only when the IPv4 address would.
/// Every other prefix that embeds IPv4 (IPv4-mapped, IPv4-compatible, the local-use
/// 64:ff9b:1::/48, 6to4, Teredo) is not globally reachable and refused whole.
pub const NAT64_WELL_KNOWN: Ipv6Addr = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0);
