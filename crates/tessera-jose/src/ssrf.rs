//! The SSRF guard of outbound fetches: which resolved addresses a URL chosen by someone else
//! (a client's `jwks_uri`) may reach.
//!
//! An allow-list, not a deny-list: only global unicast addresses pass. Every range of the IANA
//! special-purpose registries (RFC 6890 and its updates) is refused, including those that
//! reach IPv4 through IPv6 — NAT64 (`64:ff9b::/96`, `64:ff9b:1::/48`, RFC 6052/8215), 6to4
//! (`2002::/16`, RFC 3056), IPv4-compatible (`::/96`), Teredo (`2001::/32`) — because a
//! gateway on the way would translate them into an internal IPv4 address. An IPv4-mapped
//! address (`::ffff:0:0/96`) is what its IPv4 address is.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv4 special-purpose ranges (IANA IPv4 Special-Purpose Address Registry), as
/// (network, prefix length).
const IPV4_SPECIAL: [([u8; 4], u8); 15] = [
    ([0, 0, 0, 0], 8),       // "this network" (RFC 791)
    ([10, 0, 0, 0], 8),      // private (RFC 1918)
    ([100, 64, 0, 0], 10),   // shared address space, carrier-grade NAT (RFC 6598)
    ([127, 0, 0, 0], 8),     // loopback (RFC 1122)
    ([169, 254, 0, 0], 16),  // link local, cloud metadata (RFC 3927)
    ([172, 16, 0, 0], 12),   // private (RFC 1918)
    ([192, 0, 0, 0], 24),    // IETF protocol assignments (RFC 6890)
    ([192, 0, 2, 0], 24),    // documentation TEST-NET-1 (RFC 5737)
    ([192, 88, 99, 0], 24),  // 6to4 relay anycast (RFC 7526)
    ([192, 168, 0, 0], 16),  // private (RFC 1918)
    ([198, 18, 0, 0], 15),   // benchmarking (RFC 2544)
    ([198, 51, 100, 0], 24), // documentation TEST-NET-2 (RFC 5737)
    ([203, 0, 113, 0], 24),  // documentation TEST-NET-3 (RFC 5737)
    ([224, 0, 0, 0], 4),     // multicast (RFC 5771)
    ([240, 0, 0, 0], 4),     // reserved, and the limited broadcast 255.255.255.255 (RFC 1112)
];

/// IPv6 ranges refused inside the global unicast block `2000::/3` (IANA IPv6 Special-Purpose
/// Address Registry); everything outside `2000::/3` is refused anyway (loopback, `::/96`,
/// NAT64 `64:ff9b::/96` and `64:ff9b:1::/48`, discard `100::/64`, unique local `fc00::/7`,
/// link local `fe80::/10`, multicast `ff00::/8`).
const IPV6_SPECIAL_IN_GLOBAL: [([u16; 8], u8); 4] = [
    ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), // IETF protocol assignments, Teredo (RFC 2928, 4380)
    ([0x2001, 0x0db8, 0, 0, 0, 0, 0, 0], 32), // documentation (RFC 3849)
    ([0x2002, 0, 0, 0, 0, 0, 0, 0], 16), // 6to4 (RFC 3056)
    ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), // documentation (RFC 9637)
];

/// Whether `ip` is a global unicast address, the only kind an outbound fetch may reach.
pub fn is_global_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_global_v4(v4),
            None => is_global_v6(v6),
        },
    }
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let ip = u32::from(ip);
    !IPV4_SPECIAL.iter().any(|(net, len)| {
        let mask = u32::MAX << (32 - u32::from(*len));
        ip & mask == u32::from_be_bytes(*net)
    })
}

fn is_global_v6(ip: Ipv6Addr) -> bool {
    let ip = u128::from(ip);
    let within = |net: &[u16; 8], len: u8| {
        let mask = u128::MAX << (128 - u32::from(len));
        ip & mask == u128::from(Ipv6Addr::from(*net))
    };
    within(&[0x2000, 0, 0, 0, 0, 0, 0, 0], 3)
        && !IPV6_SPECIAL_IN_GLOBAL.iter().any(|(net, len)| within(net, *len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(ip: &str) -> bool {
        is_global_unicast(ip.parse().unwrap())
    }

    #[test]
    fn ssrf_every_special_purpose_ipv4_range_is_refused() {
        for internal in [
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.255.255",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.1",
            "192.0.0.170",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!global(internal), "{internal}");
        }
        for public in [
            "93.184.216.34",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "198.20.0.1",
            "223.255.255.255",
            "192.0.1.1",
        ] {
            assert!(global(public), "{public}");
        }
    }

    #[test]
    fn ssrf_ipv6_ranges_that_reach_ipv4_or_the_local_network_are_refused() {
        for internal in [
            "::",
            "::1",
            "::7f00:1",           // IPv4-compatible 127.0.0.1
            "::a9fe:a9fe",        // IPv4-compatible 169.254.169.254
            "64:ff9b::a9fe:a9fe", // NAT64 169.254.169.254
            "64:ff9b::808:808",   // NAT64 of even a public address: a translator we do not know
            "64:ff9b:1::a00:1",   // local-use NAT64
            "2002:7f00:1::1",     // 6to4 of 127.0.0.1
            "2002:a9fe:a9fe::1",  // 6to4 of 169.254.169.254
            "2001::1",            // Teredo
            "2001:2::1",          // benchmarking
            "2001:db8::1",        // documentation
            "3fff::1",            // documentation
            "100::1",             // discard
            "fc00::1",
            "fd00::1",
            "fe80::1",
            "fec0::1", // site local (deprecated)
            "ff02::1",
            "::ffff:127.0.0.1", // IPv4-mapped: judged as IPv4
            "::ffff:10.0.0.1",
            "::ffff:198.18.0.1",
        ] {
            assert!(!global(internal), "{internal}");
        }
        for public in [
            "2606:4700::1111",
            "2a00:1450:4001::200e",
            "2001:4860:4860::8888",
            "::ffff:93.184.216.34",
        ] {
            assert!(global(public), "{public}");
        }
    }
}
