use super::registry::{self, Entry, Reach};
use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

/// Walks a table: the first and last address of every entry are refused unless the
/// entry is globally reachable (64:ff9b::/96 is, but its first and last addresses embed
/// 0.0.0.0 and 255.255.255.255). An address that a more specific entry of the same table
/// covers is that entry's to decide (it is walked too), as is one of `shadow`, the
/// special-purpose table that takes precedence over an address-space table.
fn walk<A: Family + fmt::Debug>(table: &'static [Entry<A>], shadow: &'static [Entry<A>], name: &str) {
    for entry in table {
        let mut samples = vec![entry.addr, entry.last()];
        samples.retain(|a| table.iter().filter(|e| e.contains(*a)).all(|e| e.len <= entry.len));
        assert!(!samples.is_empty(), "{name}: nothing to try in {entry:?}");
        samples.retain(|a| !shadow.iter().any(|e| e.contains(*a)));
        for a in samples {
            let nat64 = Into::<IpAddr>::into(entry.addr) == IpAddr::V6(registry::NAT64_WELL_KNOWN) && entry.len == 96;
            let expected = nat64 || entry.reach != Reach::Global;
            let refused = check(a.into()).is_err();
            assert_eq!(refused, expected, "{name}: {a:?} in {} ({})", entry.block(), entry.name);
        }
    }
}

#[test]
fn every_registry_entry_is_refused_unless_globally_reachable() {
    walk(registry::V4_SPECIAL, &[], registry::V4_SPECIAL_NAME);
    walk(registry::V6_SPECIAL, &[], registry::V6_SPECIAL_NAME);
    walk(registry::V4_SPACE, registry::V4_SPECIAL, registry::V4_SPACE_NAME);
    walk(registry::V6_SPACE, registry::V6_SPECIAL, registry::V6_SPACE_NAME);
}

#[test]
fn registry_blocks_are_well_formed() {
    fn check_table<A: Family + fmt::Debug>(table: &[Entry<A>]) {
        for e in table {
            assert!(e.len <= A::WIDTH, "{e:?}");
            assert_eq!(e.addr.bits() & e.host_mask(), 0, "host bits set in {e:?}");
        }
    }
    check_table(registry::V4_SPECIAL);
    check_table(registry::V4_SPACE);
    check_table(registry::V6_SPECIAL);
    check_table(registry::V6_SPACE);
    // The IPv6 address-space table tiles ::/0: in order, each block starting right after
    // the previous one.
    let space = registry::V6_SPACE;
    assert_eq!((space[0].addr, space[space.len() - 1].last()), (Ipv6Addr::UNSPECIFIED, Ipv6Addr::from_bits(u128::MAX)));
    for pair in space.windows(2) {
        assert_eq!(pair[1].addr.to_bits(), pair[0].last().to_bits() + 1, "{:?} / {:?}", pair[0], pair[1]);
    }
}

#[test]
fn non_public_addresses_are_refused_in_every_form() {
    for bad in [
        // Ranges accepted before the registries were applied whole.
        "192.0.2.1",
        "198.51.100.7",
        "203.0.113.9",
        "192.88.99.1",
        "2001:db8::1",
        "100::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2", // Teredo
        "::ffff:0:7f00:1",                      // IPv4-translated 127.0.0.1
        "64:ff9b:1::7f00:1",                    // local-use NAT64 of 127.0.0.1
        // The classic ones.
        "127.0.0.1",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "0.1.2.3",
        "192.0.0.8",
        "192.0.0.170",
        "198.18.0.1",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fc00::1",
        "fd12::1",
        "fe80::1",
        "fec0::1",
        "ff02::1",
        "3fff::1",
        "5f00::1",
        "2001:2::1",
        "2001:10::1",
        // IPv4 inside IPv6.
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:8.8.8.8",
        "::127.0.0.1",
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b::a00:1",
        "2002:7f00:1::",
        "2002:808:808::1",
    ] {
        assert!(!is_public(ip(bad)), "{bad}");
    }
    for good in [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "100.128.0.1",
        "172.32.0.1",
        "192.0.0.9",
        "192.175.48.1",
        "2606:4700::1111",
        "2001:4860:4860::8888",
        "2001:3::1",
        "2620:4f:8000::1",
        "64:ff9b::808:808",
    ] {
        assert_eq!(check(ip(good)), Ok(()), "{good}");
    }
}

#[test]
fn a_refusal_names_the_registry_entry_and_the_embedded_address() {
    let why = check(ip("203.0.113.9")).expect_err("documentation");
    assert_eq!(
        why.to_string(),
        "in 203.0.113.0/24 (Documentation (TEST-NET-3), IANA IPv4 Special-Purpose Address Registry), not globally reachable"
    );
    let why = check(ip("64:ff9b::7f00:1")).expect_err("NAT64 of loopback");
    assert_eq!(why.embedded, Some((Block { addr: ip("64:ff9b::"), len: 96 }, Ipv4Addr::LOCALHOST)));
    assert!(why.to_string().starts_with("64:ff9b::/96 embedding 127.0.0.1, in 127.0.0.0/8 (Loopback,"), "{why}");
    let why = check(ip("2002:808:808::1")).expect_err("6to4");
    assert_eq!((why.name, why.block.to_string()), ("6to4", "2002::/16".to_owned()));
    let why = check(ip("4000::1")).expect_err("unallocated");
    assert_eq!((why.name, why.registry), ("Reserved by IETF", registry::V6_SPACE_NAME));
}

#[test]
fn the_operator_can_open_private_networks() {
    let open = AddressPolicy { allow_private: true, allow: vec![] };
    for a in ["127.0.0.1", "192.0.2.1", "::1", "64:ff9b:1::7f00:1"] {
        assert!(open.permits(ip(a)), "{a}");
    }
    let listed = AddressPolicy {
        allow_private: false,
        allow: vec!["10.1.0.0/16".parse().expect("cidr"), "fd00:1::/64".parse().expect("cidr")],
    };
    assert!(listed.permits(ip("10.1.2.3")) && listed.permits(ip("fd00:1::5")));
    assert!(!listed.permits(ip("10.2.0.1")) && !listed.permits(ip("fd00:2::5")) && !listed.permits(ip("127.0.0.1")));
    assert!(listed.permits(ip("8.8.8.8")) && listed.permits(ip("2606:4700::1111")));
    let strict = AddressPolicy::default();
    assert_eq!(strict.check(ip("198.51.100.1")).map_err(|r| r.name), Err("Documentation (TEST-NET-2)"));
}
