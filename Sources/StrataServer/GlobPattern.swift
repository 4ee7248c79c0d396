/// Redis' glob matching (`stringmatchlen`), for SCAN MATCH, KEYS and CONFIG GET:
/// `*` any run, `?` one byte, `[abc]`, `[^abc]`, `[a-z]` classes, and `\x` to match `x` itself.
enum GlobPattern {
    static func matches(_ pattern: [UInt8], _ string: [UInt8], caseInsensitive: Bool = false) -> Bool {
        match(pattern[...], string[...], caseInsensitive, depth: 0)
    }

    private static func lower(_ b: UInt8, _ fold: Bool) -> UInt8 {
        fold && b >= 65 && b <= 90 ? b + 32 : b
    }

    private static func match(_ p: ArraySlice<UInt8>, _ s: ArraySlice<UInt8>, _ fold: Bool, depth: Int) -> Bool {
        var p = p
        var s = s
        guard depth < 1000 else { return false }  // bounded recursion on pathological patterns
        while let c = p.first {
            switch c {
            case UInt8(ascii: "*"):
                while p.count > 1 && p[p.startIndex + 1] == UInt8(ascii: "*") { p = p.dropFirst() }
                if p.count == 1 { return true }
                var rest = s
                while true {
                    if match(p.dropFirst(), rest, fold, depth: depth + 1) { return true }
                    if rest.isEmpty { return false }
                    rest = rest.dropFirst()
                }
            case UInt8(ascii: "?"):
                if s.isEmpty { return false }
                s = s.dropFirst()
                p = p.dropFirst()
            case UInt8(ascii: "["):
                if s.isEmpty { return false }
                p = p.dropFirst()
                let negate = p.first == UInt8(ascii: "^")
                if negate { p = p.dropFirst() }
                var matched = false
                let target = lower(s.first!, fold)
                while let pc = p.first, pc != UInt8(ascii: "]") {
                    if pc == UInt8(ascii: "\\") && p.count >= 2 {
                        p = p.dropFirst()
                        if lower(p.first!, fold) == target { matched = true }
                    } else if p.count >= 3 && p[p.startIndex + 1] == UInt8(ascii: "-") && p[p.startIndex + 2] != UInt8(ascii: "]") {
                        var lo = lower(pc, fold)
                        var hi = lower(p[p.startIndex + 2], fold)
                        if lo > hi { swap(&lo, &hi) }
                        if target >= lo && target <= hi { matched = true }
                        p = p.dropFirst(2)
                    } else if lower(pc, fold) == target {
                        matched = true
                    }
                    p = p.dropFirst()
                }
                if !p.isEmpty { p = p.dropFirst() }  // the ']'
                if matched == negate { return false }
                s = s.dropFirst()
            case UInt8(ascii: "\\") where p.count >= 2:
                p = p.dropFirst()
                fallthrough
            default:
                guard let sc = s.first, lower(sc, fold) == lower(p.first!, fold) else { return false }
                s = s.dropFirst()
                p = p.dropFirst()
            }
        }
        return s.isEmpty
    }
}
