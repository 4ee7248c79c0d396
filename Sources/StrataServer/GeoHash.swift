import Foundation

/// Redis' geohash arithmetic (geohash.c, geohash_helper.c): a position is a 52-bit interleaved
/// hash of its latitude and longitude, stored as a sorted-set score, so GEO commands and Redis
/// agree on every score, decoded position and distance.
enum GeoHash {
    static let longitudeRange = (min: -180.0, max: 180.0)
    /// Web Mercator's latitude limits, Redis' range for positions.
    static let latitudeRange = (min: -85.05112878, max: 85.05112878)
    static let step = 26
    static let earthRadius = 6372797.560856

    static func isValid(longitude: Double, latitude: Double) -> Bool {
        longitude >= longitudeRange.min && longitude <= longitudeRange.max
            && latitude >= latitudeRange.min && latitude <= latitudeRange.max
    }

    /// The 52-bit hash of a valid position over the given ranges (Redis' `geohashEncode`).
    static func encode(
        longitude: Double, latitude: Double,
        longitudeRange lon: (min: Double, max: Double) = longitudeRange,
        latitudeRange lat: (min: Double, max: Double) = latitudeRange
    ) -> UInt64 {
        let scale = Double(UInt64(1) << UInt64(step))
        let latOffset = (latitude - lat.min) / (lat.max - lat.min) * scale
        let lonOffset = (longitude - lon.min) / (lon.max - lon.min) * scale
        // C converts the doubles to uint32 by truncation; the top of the range wraps to 0 there.
        return interleave(UInt32(truncatingIfNeeded: UInt64(latOffset)), UInt32(truncatingIfNeeded: UInt64(lonOffset)))
    }

    /// The centre of the cell a score names, clamped to the valid ranges (Redis' `decodeGeohash`).
    static func decode(_ score: Double) -> (longitude: Double, latitude: Double) {
        let bits = UInt64(score)
        let (ilat, ilon) = deinterleave(bits)
        let scale = Double(UInt64(1) << UInt64(step))
        let latScale = latitudeRange.max - latitudeRange.min
        let lonScale = longitudeRange.max - longitudeRange.min
        let latMin = latitudeRange.min + (Double(ilat) / scale) * latScale
        let latMax = latitudeRange.min + (Double(UInt64(ilat) + 1) / scale) * latScale
        let lonMin = longitudeRange.min + (Double(ilon) / scale) * lonScale
        let lonMax = longitudeRange.min + (Double(UInt64(ilon) + 1) / scale) * lonScale
        let longitude = min(max((lonMin + lonMax) / 2, longitudeRange.min), longitudeRange.max)
        let latitude = min(max((latMin + latMax) / 2, latitudeRange.min), latitudeRange.max)
        return (longitude, latitude)
    }

    /// GEOHASH's 11-character standard geohash (latitude over -90...90, the last character 0).
    static func standardText(_ score: Double) -> [UInt8] {
        let position = decode(score)
        let bits = encode(
            longitude: position.longitude, latitude: position.latitude, longitudeRange: (-180, 180), latitudeRange: (-90, 90))
        let alphabet = Array("0123456789bcdefghjkmnpqrstuvwxyz".utf8)
        var text: [UInt8] = []
        for i in 0..<10 {
            let shift = UInt64(52 - (i + 1) * 5)
            text.append(alphabet[Int((bits >> shift) & 0x1F)])
        }
        // 52 bits make 10 characters and 2 bits: Redis prints an 11th, as 0.
        text.append(alphabet[0])
        return text
    }

    private static func radians(_ degrees: Double) -> Double { degrees * (Double.pi / 180.0) }

    /// Distance along a meridian between two latitudes.
    static func latitudeDistance(_ lat1: Double, _ lat2: Double) -> Double {
        earthRadius * abs(radians(lat2) - radians(lat1))
    }

    /// The haversine distance in metres, as Redis 7.0 computes it.
    static func distance(_ lon1: Double, _ lat1: Double, _ lon2: Double, _ lat2: Double) -> Double {
        let v = sin((radians(lon2) - radians(lon1)) / 2)
        if v == 0 { return latitudeDistance(lat1, lat2) }
        let (lat1r, lat2r) = (radians(lat1), radians(lat2))
        let u = sin((lat2r - lat1r) / 2)
        let a = u * u + cos(lat1r) * cos(lat2r) * v * v
        return 2.0 * earthRadius * asin(sqrt(a))
    }

    /// The distance from the centre if the point is inside a width x height box around it.
    static func distanceInBox(width: Double, height: Double, centre: (Double, Double), point: (Double, Double)) -> Double? {
        guard latitudeDistance(point.1, centre.1) <= height / 2 else { return nil }
        guard distance(point.0, point.1, centre.0, point.1) <= width / 2 else { return nil }
        return distance(centre.0, centre.1, point.0, point.1)
    }

    private static func spread(_ value: UInt32) -> UInt64 {
        var x = UInt64(value)
        x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF
        x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF
        x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F
        x = (x | (x << 2)) & 0x3333_3333_3333_3333
        x = (x | (x << 1)) & 0x5555_5555_5555_5555
        return x
    }

    private static func squash(_ value: UInt64) -> UInt32 {
        var x = value & 0x5555_5555_5555_5555
        x = (x | (x >> 1)) & 0x3333_3333_3333_3333
        x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F
        x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF
        x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF
        x = (x | (x >> 16)) & 0x0000_0000_FFFF_FFFF
        return UInt32(x)
    }

    /// Latitude bits at the even positions, longitude bits at the odd ones.
    static func interleave(_ latitude: UInt32, _ longitude: UInt32) -> UInt64 {
        spread(latitude) | (spread(longitude) << 1)
    }

    static func deinterleave(_ bits: UInt64) -> (latitude: UInt32, longitude: UInt32) {
        (squash(bits), squash(bits >> 1))
    }
}
