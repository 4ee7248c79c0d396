/// Redis' strict integer parsing (`string2ll`): the canonical decimal form of an Int64, no sign
/// but a leading "-", no leading zeros, no spaces. It decides what an intset may hold and what
/// HINCRBY accepts.
enum RedisInteger {
    /// The value `bytes` spell, if they are an Int64 in canonical form.
    static func parse(_ bytes: [UInt8]) -> Int64? {
        let n = bytes.count
        guard n > 0, n <= 20 else { return nil }
        if n == 1 && bytes[0] == UInt8(ascii: "0") { return 0 }
        var i = 0
        let negative = bytes[0] == UInt8(ascii: "-")
        if negative { i = 1 }
        guard i < n, bytes[i] >= UInt8(ascii: "1"), bytes[i] <= UInt8(ascii: "9") else { return nil }
        var magnitude: UInt64 = 0
        while i < n {
            let d = bytes[i]
            guard d >= UInt8(ascii: "0"), d <= UInt8(ascii: "9") else { return nil }
            let (m, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(d - UInt8(ascii: "0")))
            guard !o1, !o2 else { return nil }
            magnitude = s
            i += 1
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }

    /// The decimal bytes of `value`.
    static func format(_ value: Int64) -> [UInt8] { Array(String(value).utf8) }
}
