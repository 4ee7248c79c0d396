#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// INCRBYFLOAT's arithmetic: C's `long double`, parsed and printed as Redis does (`string2ld`
/// and `ld2string` in human mode), so results such as 0.1 + 0.2 = 0.3 match it digit for digit.
enum LongDouble {
    #if arch(x86_64) || arch(i386)
    /// C's `long double` on this platform (x87 extended precision, as Redis on x86 uses).
    typealias Value = Float80
    #else
    /// Where Swift has no `long double` type: a double, which rounds earlier than Redis does.
    typealias Value = Double
    #endif

    /// The longest text Redis parses as a long double (`MAX_LONG_DOUBLE_CHARS`).
    static let maximumLength = 5 * 1024

    /// `bytes` as a long double, or nil where Redis' `string2ld` refuses it: empty, too long,
    /// leading space, trailing bytes, NaN, or out of range (underflow to zero included).
    static func parse<C: Collection<UInt8>>(_ bytes: C) -> Value? {
        guard !bytes.isEmpty, bytes.count < maximumLength else { return nil }
        guard let first = bytes.first, !(first == 0x20 || (0x09...0x0d).contains(first)) else { return nil }
        var text = [CChar](repeating: 0, count: bytes.count + 1)
        for (i, byte) in bytes.enumerated() { text[i] = CChar(bitPattern: byte) }
        return text.withUnsafeMutableBufferPointer { buffer -> Value? in
            let start = buffer.baseAddress!
            var end: UnsafeMutablePointer<CChar>? = start
            errno = 0
            #if arch(x86_64) || arch(i386)
            let value = strtold(start, &end)
            #else
            let value = strtod(start, &end)
            #endif
            guard let end, end - start == bytes.count else { return nil }
            if errno == ERANGE && (value.isInfinite || value == 0) { return nil }
            if errno == EINVAL || value.isNaN { return nil }
            return value
        }
    }

    /// `value` printed with 17 decimals (`%.17Lf`), trailing zeros and a bare point removed,
    /// and "-0" turned into "0": Redis' human-friendly form. `value` is finite.
    static func format(_ value: Value) -> [UInt8] {
        // The largest long double has 4,933 integer digits: with the sign, point and 17
        // decimals it fits in Redis' buffer, and in this one.
        var buffer = [CChar](repeating: 0, count: maximumLength)
        #if arch(x86_64) || arch(i386)
        let format = "%.17Lf"
        #else
        let format = "%.17f"
        #endif
        let length = withVaList([value]) { arguments in
            buffer.withUnsafeMutableBufferPointer { vsnprintf($0.baseAddress!, $0.count, format, arguments) }
        }
        var text = buffer[0..<Int(length)].map { UInt8(bitPattern: $0) }
        if text.contains(UInt8(ascii: ".")) {
            while text.last == UInt8(ascii: "0") { text.removeLast() }
            if text.last == UInt8(ascii: ".") { text.removeLast() }
        }
        if text == Array("-0".utf8) { text = [UInt8(ascii: "0")] }
        return text
    }
}
