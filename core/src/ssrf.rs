//! The SSRF guard (SPEC §8): which addresses a webhook delivery may connect to. The API
//! applies it to a URL's addresses at lease creation, the worker's resolver to every
//! address a delivery connects to.
//!
//! An address passes when the most specific entry of the IANA special-purpose registry
//! that contains it is globally reachable (`N/A` counts as not), or when no entry contains
//! it and the address-space registry allocates it for unicast (IPv4 outside multicast,
//! IPv6 inside 2000::/3). An address of the well-known NAT64 prefix 64:ff9b::/96 passes
//! only when the IPv4 address it embeds would; every other prefix that embeds IPv4
//! (IPv4-mapped, IPv4-compatible, 64:ff9b:1::/48, 6to4, Teredo) is refused whole. The
//! operator may open private networks (`LEASEHOLD_WEBHOOK_ALLOW_PRIVATE`,
//! `LEASEHOLD_WEBHOOK_ALLOW_CIDRS`).

pub mod registry;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use registry::{Entry, Reach};

use crate::config::WebhookConfig;

/// An address family of the registries.
pub trait Family: Copy + Into<IpAddr> {
    /// Address width in bits.
    const WIDTH: u8;
    /// The address as an integer.
    fn bits(self) -> u128;
    /// The address of an integer below `2^WIDTH`.
    fn from_bits(bits: u128) -> Self;
}

impl Family for Ipv4Addr {
    const WIDTH: u8 = 32;
    fn bits(self) -> u128 {
        u128::from(self.to_bits())
    }
    fn from_bits(bits: u128) -> Self {
        Ipv4Addr::from(u32::try_from(bits).unwrap_or(u32::MAX))
    }
}

impl Family for Ipv6Addr {
    const WIDTH: u8 = 128;
    fn bits(self) -> u128 {
        self.to_bits()
    }
    fn from_bits(bits: u128) -> Self {
        Ipv6Addr::from_bits(bits)
    }
}

impl<A: Family> Entry<A> {
    /// The host bits of the block.
    fn host_mask(&self) -> u128 {
        1u128.checked_shl(u32::from(A::WIDTH.saturating_sub(self.len))).map_or(u128::MAX, |b| b - 1)
    }

    /// True when `ip` lies in the block.
    pub fn contains(&self, ip: A) -> bool {
        let host = self.host_mask();
        ip.bits() & !host == self.addr.bits() & !host
    }

    /// The block's last address.
    pub fn last(&self) -> A {
        A::from_bits(self.addr.bits() | self.host_mask())
    }

    fn block(&self) -> Block {
        Block { addr: self.addr.into(), len: self.len }
    }
}

/// The most specific entry of `table` that contains `ip`.
fn most_specific<A: Family>(table: &'static [Entry<A>], ip: A) -> Option<&'static Entry<A>> {
    table.iter().filter(|e| e.contains(ip)).max_by_key(|e| e.len)
}

/// An address block, `addr/len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// First address.
    pub addr: IpAddr,
    /// Prefix length.
    pub len: u8,
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// Why an address is refused: the registry entry it falls in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The block.
    pub block: Block,
    /// The registry's name for the block.
    pub name: &'static str,
    /// The registry.
    pub registry: &'static str,
    /// For an address of 64:ff9b::/96: that prefix and the IPv4 address it embeds (which
    /// `block` refused).
    pub embedded: Option<(Block, Ipv4Addr)>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((prefix, v4)) = self.embedded {
            write!(f, "{prefix} embedding {v4}, ")?;
        }
        write!(f, "in {} ({}, {}), not globally reachable", self.block, self.name, self.registry)
    }
}

fn decide<A: Family>(entry: &Entry<A>, registry: &'static str) -> Result<(), Refusal> {
    match entry.reach {
        Reach::Global => Ok(()),
        Reach::NotGlobal | Reach::NotApplicable => {
            Err(Refusal { block: entry.block(), name: entry.name, registry, embedded: None })
        }
    }
}

/// `Ok` when the registries make `ip` a globally reachable unicast address.
pub fn check(ip: IpAddr) -> Result<(), Refusal> {
    match ip {
        IpAddr::V4(v4) => check_v4(v4),
        IpAddr::V6(v6) => check_v6(v6),
    }
}

/// True when [`check`] passes.
pub fn is_public(ip: IpAddr) -> bool {
    check(ip).is_ok()
}

fn check_v4(ip: Ipv4Addr) -> Result<(), Refusal> {
    if let Some(entry) = most_specific(registry::V4_SPECIAL, ip) {
        return decide(entry, registry::V4_SPECIAL_NAME);
    }
    match most_specific(registry::V4_SPACE, ip) {
        Some(entry) => decide(entry, registry::V4_SPACE_NAME),
        None => Ok(()),
    }
}

fn check_v6(ip: Ipv6Addr) -> Result<(), Refusal> {
    if let Some(entry) = most_specific(registry::V6_SPECIAL, ip) {
        decide(entry, registry::V6_SPECIAL_NAME)?;
        if entry.addr == registry::NAT64_WELL_KNOWN && entry.len == 96 {
            let embedded = Ipv4Addr::from_bits(u32::try_from(ip.to_bits() & u128::from(u32::MAX)).unwrap_or(0));
            return check_v4(embedded).map_err(|r| Refusal { embedded: Some((entry.block(), embedded)), ..r });
        }
        return Ok(());
    }
    match most_specific(registry::V6_SPACE, ip) {
        Some(entry) => decide(entry, registry::V6_SPACE_NAME),
        None => Ok(()),
    }
}

/// Which addresses deliveries may connect to.
#[derive(Clone, Debug, Default)]
pub struct AddressPolicy {
    allow_private: bool,
    allow: Vec<ipnet::IpNet>,
}

impl AddressPolicy {
    /// From `LEASEHOLD_WEBHOOK_ALLOW_PRIVATE` and `LEASEHOLD_WEBHOOK_ALLOW_CIDRS`.
    pub fn from_config(config: &WebhookConfig) -> Self {
        Self { allow_private: config.allow_private, allow: config.allow_cidrs.clone() }
    }

    /// `Ok` when a delivery may connect to `ip`: everything when private addresses are
    /// allowed, the operator's networks, and globally reachable addresses.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        if self.allow_private || self.allow.iter().any(|n| n.contains(&ip)) {
            return Ok(());
        }
        check(ip)
    }

    /// True when [`AddressPolicy::check`] passes.
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.check(ip).is_ok()
    }
}

#[cfg(test)]
mod tests;
