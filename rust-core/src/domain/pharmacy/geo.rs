//! Points on the Earth, the great-circle (haversine) distance between them in whole metres,
//! and the latitude/longitude box that surely contains a search circle (what the spatial
//! index is asked for). Coordinates are floating point; amounts never are.

use serde::{Deserialize, Serialize};

/// Mean Earth radius (IUGG), metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A point in decimal degrees, in the datum the catalogue uses (all points of one catalogue
/// and its queries must share it).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GeoPoint {
    /// Latitude, −90 to 90.
    pub lat: f64,
    /// Longitude, −180 to 180.
    pub lon: f64,
}

impl GeoPoint {
    pub fn new(lat: f64, lon: f64) -> Self {
        GeoPoint { lat, lon }
    }

    /// Finite and within range.
    pub fn is_valid(&self) -> bool {
        self.lat.is_finite()
            && self.lon.is_finite()
            && (-90.0..=90.0).contains(&self.lat)
            && (-180.0..=180.0).contains(&self.lon)
    }
}

/// Great-circle distance by the haversine formula on a sphere of [`EARTH_RADIUS_M`], rounded
/// to the nearest metre. The ranking compares these integers, so the indexed search and the
/// full scan agree exactly.
pub fn haversine_m(a: GeoPoint, b: GeoPoint) -> u32 {
    let (phi1, phi2) = (a.lat.to_radians(), b.lat.to_radians());
    let half_dphi = (phi2 - phi1) / 2.0;
    let half_dlambda = (b.lon - a.lon).to_radians() / 2.0;
    let h = half_dphi.sin().powi(2) + phi1.cos() * phi2.cos() * half_dlambda.sin().powi(2);
    let central = 2.0 * h.clamp(0.0, 1.0).sqrt().asin();
    // At most half the circumference (about 20,015 km), well inside u32.
    (EARTH_RADIUS_M * central).round() as u32
}

/// A latitude/longitude box, `[lon, lat]` corners as the R-tree stores points.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct GeoBox {
    pub min: [f64; 2],
    pub max: [f64; 2],
}

/// Relative and absolute slack added to the box so floating-point error cannot leave out a
/// point that the integer distance test would accept.
const REL_SLACK: f64 = 1e-6;
const ABS_SLACK_DEG: f64 = 1e-7;

/// A box containing every point whose [`haversine_m`] from `centre` is at most `radius_m`.
///
/// Latitude: the circle spans `±θ` where `θ = (radius + 1 m) / R` (the extra metre covers the
/// rounding to whole metres). Longitude: on a sphere the widest point of a circle of angular
/// radius θ at latitude φ is `asin(sin θ / cos φ)`; when the circle reaches a pole or crosses
/// the ±180° meridian the box takes every longitude (correct, merely less selective).
pub(crate) fn search_box(centre: GeoPoint, radius_m: u32) -> GeoBox {
    let theta = (f64::from(radius_m) + 1.0) / EARTH_RADIUS_M;
    let dlat = theta.to_degrees() * (1.0 + REL_SLACK) + ABS_SLACK_DEG;
    let min_lat = (centre.lat - dlat).max(-90.0);
    let max_lat = (centre.lat + dlat).min(90.0);
    let whole_lon = GeoBox { min: [-180.0, min_lat], max: [180.0, max_lat] };
    if centre.lat.abs() + dlat >= 89.0 {
        return whole_lon;
    }
    let ratio = theta.sin() / centre.lat.to_radians().cos();
    if !(0.0..1.0).contains(&ratio) {
        return whole_lon;
    }
    let dlon = ratio.asin().to_degrees() * (1.0 + REL_SLACK) + ABS_SLACK_DEG;
    if centre.lon - dlon < -180.0 || centre.lon + dlon > 180.0 {
        return whole_lon;
    }
    GeoBox { min: [centre.lon - dlon, min_lat], max: [centre.lon + dlon, max_lat] }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_matches_known_distances() {
        let a = GeoPoint::new(30.0, 114.0);
        assert_eq!(haversine_m(a, a), 0);
        // One degree of latitude on this sphere: R × π / 180 = 111,195.08 m.
        assert_eq!(haversine_m(a, GeoPoint::new(31.0, 114.0)), 111_195);
        // Antipodes: half the circumference.
        assert_eq!(haversine_m(GeoPoint::new(0.0, 0.0), GeoPoint::new(0.0, 180.0)), 20_015_114);
    }

    #[test]
    fn search_box_contains_points_on_the_circle_in_every_direction() {
        for &(lat, lon) in &[(30.6, 114.3), (0.0, 0.0), (-45.0, 170.0), (60.0, -179.9), (88.5, 10.0)] {
            let centre = GeoPoint::new(lat, lon);
            for radius in [1u32, 500, 4_000, 50_000] {
                let b = search_box(centre, radius);
                for step in (0..360).step_by(5) {
                    // Walk outwards along a bearing until the rounded distance exceeds the radius.
                    let bearing = f64::from(step).to_radians();
                    let mut inside = centre;
                    for k in 1..=400 {
                        let d = f64::from(radius) * f64::from(k) / 300.0;
                        let delta = d / EARTH_RADIUS_M;
                        let (p1, l1) = (centre.lat.to_radians(), centre.lon.to_radians());
                        let p2 = (p1.sin() * delta.cos() + p1.cos() * delta.sin() * bearing.cos()).asin();
                        let l2 = l1 + (bearing.sin() * delta.sin() * p1.cos()).atan2(delta.cos() - p1.sin() * p2.sin());
                        let mut lon2 = l2.to_degrees();
                        if lon2 > 180.0 {
                            lon2 -= 360.0;
                        } else if lon2 < -180.0 {
                            lon2 += 360.0;
                        }
                        let p = GeoPoint::new(p2.to_degrees(), lon2);
                        if haversine_m(centre, p) > radius {
                            break;
                        }
                        inside = p;
                    }
                    assert!(
                        b.min[0] <= inside.lon
                            && inside.lon <= b.max[0]
                            && b.min[1] <= inside.lat
                            && inside.lat <= b.max[1],
                        "{inside:?} at bearing {step} escapes the box {b:?} of radius {radius} around {centre:?}"
                    );
                }
            }
        }
    }
}
