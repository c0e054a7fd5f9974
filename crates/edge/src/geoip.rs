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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn shared(name: &str) -> Option<PathBuf> {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/geoip")
            .join(name);
        p.exists().then_some(p)
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let err = GeoIp::open(Some(Path::new("/nonexistent/x.mmdb")), None)
            .err()
            .unwrap();
        assert!(err.contains("/nonexistent/x.mmdb"), "{err}");
    }

    #[test]
    fn maxmind_test_databases() {
        // MaxMind's test databases ship in ../shared; skip quietly where they are absent.
        let (Some(country), Some(asn)) = (
            shared("GeoIP2-Country-Test.mmdb"),
            shared("GeoLite2-ASN-Test.mmdb"),
        ) else {
            eprintln!("skipping: ../shared/geoip not present");
            return;
        };
        let g = GeoIp::open(Some(&country), Some(&asn)).unwrap().unwrap();
        let geo = g.lookup("1.0.0.1".parse().unwrap());
        assert_eq!(geo.asn, Some(15169));
        let geo = g.lookup("2.125.160.216".parse().unwrap());
        assert_eq!(geo.country_str(), Some("GB"));
        assert_eq!(g.lookup("127.0.0.1".parse().unwrap()), Geo::default());
    }
}
