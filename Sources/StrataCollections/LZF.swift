/// LZF, the compression Redis uses for interior quicklist nodes (`list-compress-depth`): literal
/// runs (a control byte below 32, then up to 32 bytes) and back references (length in the top
/// 3 bits, extended by a byte when 7; a 13-bit distance), up to 8 KiB back.
public enum LZF {
    /// `input` compressed, or nil when that would not save at least `minimumSaving` bytes.
    public static func compress(_ input: [UInt8], minimumSaving: Int = 8) -> [UInt8]? {
        let n = input.count
        guard n >= 4 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(n)
        var table = [Int](repeating: -1, count: 1 << 14)
        var literalStart = 0
        var i = 0

        func flushLiterals(upTo end: Int) {
            var s = literalStart
            while s < end {
                let run = min(32, end - s)
                out.append(UInt8(run - 1))
                out.append(contentsOf: input[s..<s + run])
                s += run
            }
        }

        while i + 2 < n {
            let key = (Int(input[i]) << 16) | (Int(input[i + 1]) << 8) | Int(input[i + 2])
            let slot = ((key &* 2_654_435_761) >> 10) & ((1 << 14) - 1)
            let candidate = table[slot]
            table[slot] = i
            if candidate >= 0, i - candidate <= 8192, input[candidate] == input[i],
                input[candidate + 1] == input[i + 1], input[candidate + 2] == input[i + 2] {
                var length = 3
                let most = min(264, n - i)
                while length < most && input[candidate + length] == input[i + length] { length += 1 }
                flushLiterals(upTo: i)
                let distance = i - candidate - 1
                let encoded = length - 2
                if encoded < 7 {
                    out.append(UInt8(encoded << 5 | distance >> 8))
                } else {
                    out.append(UInt8(7 << 5 | distance >> 8))
                    out.append(UInt8(encoded - 7))
                }
                out.append(UInt8(distance & 0xFF))
                i += length
                literalStart = i
            } else {
                i += 1
            }
            if out.count + minimumSaving >= n { return nil }
        }
        flushLiterals(upTo: n)
        guard out.count + minimumSaving <= n else { return nil }
        var exact: [UInt8] = []  // hold only the compressed bytes, not the input-sized reservation
        exact.reserveCapacity(out.count)
        exact.append(contentsOf: out)
        return exact
    }

    /// The `size` bytes `input` decompresses to; nil when `input` is not valid LZF of that size.
    public static func decompress(_ input: [UInt8], size: Int) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(size)
        var i = 0
        while i < input.count {
            let control = Int(input[i])
            i += 1
            if control < 32 {
                let run = control + 1
                guard i + run <= input.count, out.count + run <= size else { return nil }
                out.append(contentsOf: input[i..<i + run])
                i += run
                continue
            }
            var length = control >> 5
            if length == 7 {
                guard i < input.count else { return nil }
                length += Int(input[i])
                i += 1
            }
            length += 2
            guard i < input.count else { return nil }
            let distance = ((control & 0x1F) << 8 | Int(input[i])) + 1
            i += 1
            guard distance <= out.count, out.count + length <= size else { return nil }
            let from = out.count - distance
            for k in 0..<length { out.append(out[from + k]) }
        }
        return out.count == size ? out : nil
    }
}
