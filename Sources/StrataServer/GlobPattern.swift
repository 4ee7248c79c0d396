/// Redis' glob matching (`stringmatchlen`), for SCAN MATCH, KEYS and CONFIG GET:
/// `*` any run, `?` one byte, `[abc]`, `[^abc]`, `[a-z]` classes, and `\x` to match `x` itself.
///
/// Every token but `*` matches exactly one byte, so on a mismatch only the last `*` needs to take
/// one more byte: at most pattern × string steps, however many stars (a recursive matcher takes
/// exponential time on `a*a*a*...b`, which a client could send to stall a node).
enum GlobPattern {
    static func matches(_ pattern: [UInt8], _ string: [UInt8], caseInsensitive: Bool = false) -> Bool {
        let star = UInt8(ascii: "*")
        var p = 0
        var s = 0
        var starAt = -1  // the token after the last star seen
        var starMatched = 0  // bytes of `string` that star covers up to
        while s < string.count {
            if p < pattern.count && pattern[p] == star {
                while p < pattern.count && pattern[p] == star { p += 1 }
                if p == pattern.count { return true }
                starAt = p
                starMatched = s
                continue
            }
            if p < pattern.count, let next = single(pattern, p, string[s], caseInsensitive) {
                p = next
                s += 1
                continue
            }
            guard starAt >= 0 else { return false }
            starMatched += 1
            s = starMatched
            p = starAt
        }
        while p < pattern.count && pattern[p] == star { p += 1 }
        return p == pattern.count
    }

    private static func lower(_ b: UInt8, _ fold: Bool) -> UInt8 {
        fold && b >= 65 && b <= 90 ? b + 32 : b
    }

    /// If the one-byte token at `p` matches `c`, the index after it; nil otherwise.
    private static func single(_ pattern: [UInt8], _ p: Int, _ c: UInt8, _ fold: Bool) -> Int? {
        let n = pattern.count
        let target = lower(c, fold)
        switch pattern[p] {
        case UInt8(ascii: "?"):
            return p + 1
        case UInt8(ascii: "["):
            var i = p + 1
            let negate = i < n && pattern[i] == UInt8(ascii: "^")
            if negate { i += 1 }
            var matched = false
            while true {
                if i < n && pattern[i] == UInt8(ascii: "\\") && n - i >= 2 {
                    i += 1
                    if lower(pattern[i], fold) == target { matched = true }
                } else if i < n && pattern[i] == UInt8(ascii: "]") {
                    break
                } else if i >= n {
                    i = n - 1  // an unclosed class runs to the end of the pattern, as in Redis
                    break
                } else if n - i >= 3 && pattern[i + 1] == UInt8(ascii: "-") {
                    var lo = lower(pattern[i], fold)
                    var hi = lower(pattern[i + 2], fold)
                    if lo > hi { swap(&lo, &hi) }
                    if target >= lo && target <= hi { matched = true }
                    i += 2
                } else if lower(pattern[i], fold) == target {
                    matched = true
                }
                i += 1
            }
            return matched != negate ? i + 1 : nil
        case UInt8(ascii: "\\") where p + 1 < n:
            return lower(pattern[p + 1], fold) == target ? p + 2 : nil
        default:
            return lower(pattern[p], fold) == target ? p + 1 : nil
        }
    }
}
