//! Country and ASN of a client address, from MaxMind `.mmdb` databases.

use palisade_policy::Geo;
use serde::Deserialize;
use std::net::IpAddr;
use std::path::Path;

/// Open GeoIP databases. Lookups allocate nothing.
pub struct GeoIp {
    country: Option<maxminddb::Reader<Vec<u8>>>,
    asn: Option<maxminddb::Reader<Vec<u8>>>,
}

#[derive(Deserialize)]
struct CountryRecord<'a> {
    #[serde(borrow)]
    country: Option<IsoCode<'a>>,
    #[serde(borrow)]
    registered_country: Option<IsoCode<'a>>,
}

#[derive(Deserialize)]
struct IsoCode<'a> {
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct AsnRecord {
    autonomous_system_number: Option<u32>,
}

impl GeoIp {
    /// Opens the databases that are configured. Errors name the file.
    pub fn open(country: Option<&Path>, asn: Option<&Path>) -> Result<Option<GeoIp>, String> {
        let open = |p: &Path| {
            maxminddb::Reader::open_readfile(p)
                .map_err(|e| format!("GeoIP database {}: {e}", p.display()))
        };
        let country = country.map(open).transpose()?;
        let asn = asn.map(open).transpose()?;
        if country.is_none() && asn.is_none() {
            return Ok(None);
        }
        Ok(Some(GeoIp { country, asn }))
    }

    /// Country and ASN of `ip`; unknown parts stay `None`.
    pub fn lookup(&self, ip: IpAddr) -> Geo {
        let mut geo = Geo::default();
        if let Some(r) = &self.country {
            if let Ok(Some(rec)) = r.lookup::<CountryRecord<'_>>(ip) {
                let code = rec
                    .country
                    .and_then(|c| c.iso_code)
                    .or_else(|| rec.registered_country.and_then(|c| c.iso_code));
                if let Some(code) = code {
                    let b = code.as_bytes();
                    if b.len() == 2 {
                        geo.country = Some([b[0].to_ascii_uppercase(), b[1].to_ascii_uppercase()]);
                    }
                }
            }
        }
        if let Some(r) = &self.asn {
            if let Ok(Some(rec)) = r.lookup::<AsnRecord>(ip) {
                geo.asn = rec.autonomous_system_number;
            }
        }
        geo
    }
}

/// MaxMind-format databases for tests, written by the tests themselves:
/// networks and answers the tests choose, no file from outside the project.
#[cfg(any(test, feature = "test-fixtures"))]
pub mod fixtures {
    use serde::Serialize;
    use std::path::{Path, PathBuf};

    #[derive(Serialize)]
    struct Iso {
        iso_code: &'static str,
    }

    #[derive(Serialize)]
    struct Country {
        country: Iso,
    }

    #[derive(Serialize)]
    struct RegisteredOnly {
        registered_country: Iso,
    }

    #[derive(Serialize)]
    struct Asn {
        autonomous_system_number: u32,
        autonomous_system_organization: &'static str,
    }

    /// Networks of the country database and their ISO codes.
    pub const COUNTRIES: &[(&str, &str)] = &[
        ("198.51.100.0/24", "KP"),
        ("81.2.69.0/24", "GB"),
        ("2001:db8:1::/48", "FR"),
    ];
    /// A network with only a registered country.
    pub const REGISTERED_ONLY: (&str, &str) = ("192.0.2.128/25", "DE");
    /// Networks of the ASN database and their numbers.
    pub const ASNS: &[(&str, u32)] = &[
        ("203.0.113.0/24", 64500),
        ("1.0.0.0/24", 15169),
        ("2001:db8:2::/48", 64501),
    ];

    /// Writes `GeoIP2-Country.mmdb` and `GeoLite2-ASN.mmdb` into `dir`;
    /// returns their paths (country, ASN).
    pub fn write(dir: &Path) -> (PathBuf, PathBuf) {
        let net = |s: &str| s.parse::<ipnet::IpNet>().expect("fixture network");
        let mut w = mmdb_writer::Writer::new("GeoIP2-Country");
        for (n, code) in COUNTRIES {
            w.insert(
                net(n),
                &Country {
                    country: Iso { iso_code: code },
                },
            )
            .expect("country record");
        }
        let (n, code) = REGISTERED_ONLY;
        w.insert(
            net(n),
            &RegisteredOnly {
                registered_country: Iso { iso_code: code },
            },
        )
        .expect("country record");
        let country = dir.join("GeoIP2-Country.mmdb");
        std::fs::write(&country, w.to_bytes().expect("country database"))
            .expect("write country database");
        let mut w = mmdb_writer::Writer::new("GeoLite2-ASN");
        for (n, asn) in ASNS {
            w.insert(
                net(n),
                &Asn {
                    autonomous_system_number: *asn,
                    autonomous_system_organization: "Example",
                },
            )
            .expect("ASN record");
        }
        let asn = dir.join("GeoLite2-ASN.mmdb");
        std::fs::write(&asn, w.to_bytes().expect("ASN database")).expect("write ASN database");
        (country, asn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_a_clear_error() {
        let err = GeoIp::open(Some(Path::new("/nonexistent/x.mmdb")), None)
            .err()
            .unwrap();
        assert!(err.contains("/nonexistent/x.mmdb"), "{err}");
    }

    #[test]
    fn country_and_asn_from_written_databases() {
        let dir = std::env::temp_dir().join(format!("palisade-geoip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (country, asn) = fixtures::write(&dir);
        let g = GeoIp::open(Some(&country), Some(&asn)).unwrap().unwrap();
        let geo = g.lookup("198.51.100.7".parse().unwrap());
        assert_eq!((geo.country_str(), geo.asn), (Some("KP"), None));
        let geo = g.lookup("1.0.0.1".parse().unwrap());
        assert_eq!((geo.country_str(), geo.asn), (None, Some(15169)));
        assert_eq!(
            g.lookup("81.2.69.160".parse().unwrap()).country_str(),
            Some("GB")
        );
        // IPv6, and an IPv4-mapped IPv6 client.
        assert_eq!(
            g.lookup("2001:db8:1::5".parse().unwrap()).country_str(),
            Some("FR")
        );
        assert_eq!(g.lookup("2001:db8:2::5".parse().unwrap()).asn, Some(64501));
        assert_eq!(
            g.lookup("::ffff:203.0.113.9".parse().unwrap()).asn,
            Some(64500)
        );
        // Only a registered country: that one.
        assert_eq!(
            g.lookup("192.0.2.200".parse().unwrap()).country_str(),
            Some("DE")
        );
        assert_eq!(g.lookup("127.0.0.1".parse().unwrap()), Geo::default());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
