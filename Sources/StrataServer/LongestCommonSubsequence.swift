import NIOCore
import RESP

/// LCS's options: LEN, IDX, MINMATCHLEN n, WITHMATCHLEN (Redis' parsing and errors).
struct LCSOptions: Sendable {
    var length = false
    var indexes = false
    var withMatchLength = false
    var minimumMatchLength = 0

    init(_ inv: Invocation) throws {
        var i = 3
        while i < inv.arguments.count {
            switch inv.upper(i) {
            case "IDX": indexes = true
            case "LEN": length = true
            case "WITHMATCHLEN": withMatchLength = true
            case "MINMATCHLEN" where i + 1 < inv.arguments.count:
                minimumMatchLength = max(try inv.integer(i + 1), 0)
                i += 1
            default: throw CommandError.syntax
            }
            i += 1
        }
        if indexes && length { throw CommandError("ERR If you want both the length and indexes, please just use IDX.") }
    }
}

/// The dynamic-programming table of the longest common subsequence of two strings, as Redis'
/// LCS builds it (4 bytes per cell), and the walk back through it that yields the subsequence
/// and its matching ranges.
struct LongestCommonSubsequence {
    let a: [UInt8]
    let b: [UInt8]
    /// `table[j + (b.count + 1) * i]`: the LCS length of a's first i bytes and b's first j.
    private var table: [UInt32]

    /// Builds the table; refuses, with Redis' text, when it would take more than `memoryLimit` bytes.
    init(_ a: [UInt8], _ b: [UInt8], memoryLimit: Int) throws {
        guard a.count < Int(UInt32.max) - 1, b.count < Int(UInt32.max) - 1 else { throw CommandError("ERR String too long for LCS") }
        let (cells, overflow) = (a.count + 1).multipliedReportingOverflow(by: b.count + 1)
        guard !overflow, cells <= memoryLimit / 4 else {
            throw CommandError("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")
        }
        self.a = a
        self.b = b
        let width = b.count + 1
        var table = [UInt32](repeating: 0, count: cells)
        for i in 1..<(a.count + 1) {
            for j in 1..<width {
                table[j + width * i] =
                    a[i - 1] == b[j - 1]
                    ? table[j - 1 + width * (i - 1)] + 1
                    : max(table[j + width * (i - 1)], table[j - 1 + width * i])
            }
        }
        self.table = table
    }

    private func cell(_ i: Int, _ j: Int) -> UInt32 { table[j + (b.count + 1) * i] }

    /// Writes LCS's reply for `options`: the subsequence, its length (LEN), or the matching
    /// ranges and the length (IDX, a map in RESP3), walking back from the ends as Redis does.
    func write(_ options: LCSOptions, to out: inout ByteBuffer, version: RESPVersion) {
        let total = Int(cell(a.count, b.count))
        if options.length {
            out.writeRESPInteger(total)
            return
        }
        var result = [UInt8](repeating: 0, count: total)
        var ranges: [(a: ClosedRange<Int>, b: ClosedRange<Int>)] = []
        var (i, j, next) = (a.count, b.count, total)
        // The range being tracked, growing backwards; aStart == nil when none is.
        var aStart: Int? = nil
        var (aEnd, bStart, bEnd) = (0, 0, 0)
        while i > 0 && j > 0 {
            var emit = false
            if a[i - 1] == b[j - 1] {
                result[next - 1] = a[i - 1]
                if aStart == nil {
                    (aStart, aEnd, bStart, bEnd) = (i - 1, i - 1, j - 1, j - 1)
                } else if aStart == i && bStart == j {
                    aStart = i - 1
                    bStart = j - 1
                } else {
                    emit = true
                }
                if aStart == 0 || bStart == 0 { emit = true }
                next -= 1
                i -= 1
                j -= 1
            } else {
                if cell(i - 1, j) > cell(i, j - 1) { i -= 1 } else { j -= 1 }
                if aStart != nil { emit = true }
            }
            if emit, let start = aStart {
                if aEnd - start + 1 >= options.minimumMatchLength { ranges.append((start...aEnd, bStart...bEnd)) }
                aStart = nil
            }
        }
        guard options.indexes else {
            out.writeRESPBulk(result)
            return
        }
        out.writeRESPMapHeader(2, version)
        out.writeRESPBulk("matches")
        out.writeRESPArrayHeader(ranges.count)
        for range in ranges {
            out.writeRESPArrayHeader(options.withMatchLength ? 3 : 2)
            for side in [range.a, range.b] {
                out.writeRESPArrayHeader(2)
                out.writeRESPInteger(side.lowerBound)
                out.writeRESPInteger(side.upperBound)
            }
            if options.withMatchLength { out.writeRESPInteger(range.a.count) }
        }
        out.writeRESPBulk("len")
        out.writeRESPInteger(total)
    }
}
