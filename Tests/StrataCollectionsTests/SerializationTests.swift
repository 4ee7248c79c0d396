import Testing
@testable import StrataCollections

@Suite struct SerializationTests {
    /// One value of each type and encoding, serialized.
    static func samples() throws -> [(name: String, bytes: [UInt8], load: ([UInt8]) throws -> String)] {
        let limits = smallLimits()
        var out: [(String, [UInt8], ([UInt8]) throws -> String)] = []
        for n in [3, 40] {
            var h = HashValue()
            for i in 0..<n { h.set(b("f\(i)"), b("v\(i)"), limits: limits) }
            out.append(("hash \(h.encodingName)", h.serialize(), { try HashValue(deserializing: $0).encodingName }))
            var z = SortedSetValue()
            for i in 0..<n { try z.add(b("m\(i)"), score: Double(i), limits: limits) }
            out.append(("zset \(z.encodingName)", z.serialize(), { try SortedSetValue(deserializing: $0).encodingName }))
            var l = ListValue()
            for i in 0..<n { l.push(b("e\(i)"), front: false, limits: limits) }
            out.append(("list \(l.encodingName)", l.serialize(), { try ListValue(deserializing: $0).encodingName }))
        }
        for members in [["1", "2"], ["a", "1"], (0..<40).map { "m\($0)" }] {
            var s = SetValue()
            for m in members { s.add(b(m), limits: limits) }
            out.append(("set \(s.encodingName)", s.serialize(), { try SetValue(deserializing: $0).encodingName }))
        }
        return out
    }

    /// Round trips keep the encoding, even under limits that would choose another.
    @Test func roundTripsKeepEncoding() throws {
        let names = try SerializationTests.samples().map { try $0.load($0.bytes) }
        #expect(names == ["listpack", "listpack", "listpack", "hashtable", "skiplist", "quicklist",
                          "intset", "listpack", "hashtable"])
    }

    /// Every truncation and any trailing byte is rejected with an error, never a crash; random
    /// byte flips either load or are rejected.
    @Test func corruptInputIsRejected() throws {
        var rng = SeededRandom(seed: 11)
        for sample in try SerializationTests.samples() {
            for cut in 0..<sample.bytes.count {
                #expect(throws: CollectionFormatError.self, "\(sample.name) cut at \(cut)") {
                    _ = try sample.load(Array(sample.bytes[0..<cut]))
                }
            }
            #expect(throws: CollectionFormatError.self) { _ = try sample.load(sample.bytes + [0]) }
            for _ in 0..<300 {
                var flipped = sample.bytes
                let i = Int.random(in: 0..<flipped.count, using: &rng)
                flipped[i] ^= UInt8.random(in: 1...255, using: &rng)
                _ = try? sample.load(flipped)
            }
        }
        #expect(throws: CollectionFormatError.self) { _ = try HashValue(deserializing: SetValue().serialize()) }
    }

    @Test func specificCorruptionsNameTheProblem() throws {
        var w = ByteWriter()
        w.byte(SerializationTag.Kind.set.rawValue)
        w.byte(SerializationTag.Encoding.intset.rawValue)
        w.count(2)
        w.fixed64(5)
        w.fixed64(3)
        #expect(throws: CollectionFormatError("intset members out of order")) { _ = try SetValue(deserializing: w.bytes) }
        var h = ByteWriter()
        h.byte(SerializationTag.Kind.hash.rawValue)
        h.byte(SerializationTag.Encoding.hashtable.rawValue)
        h.count(2)
        for _ in 0..<2 {
            h.string(b("f"))
            h.string(b("v"))
        }
        #expect(throws: CollectionFormatError("repeated hash field")) { _ = try HashValue(deserializing: h.bytes) }
        var z = ByteWriter()
        z.byte(SerializationTag.Kind.sortedSet.rawValue)
        z.byte(SerializationTag.Encoding.skiplist.rawValue)
        z.count(1)
        z.string(b("m"))
        z.double(.nan)
        #expect(throws: CollectionFormatError("NaN score")) { _ = try SortedSetValue(deserializing: z.bytes) }
    }

    @Test func limitsByNameWithAliasesAndRanges() throws {
        var limits = CollectionLimits()
        #expect(limits.value(of: "HASH-MAX-ZIPLIST-ENTRIES") == 512)
        #expect(limits.value(of: "list-max-listpack-size") == -2)
        #expect(limits.value(of: "set-max-intset-entries") == 512)
        try limits.set("zset-max-ziplist-value", to: 10)
        #expect(limits.zsetMaxListpackValue == 10)
        #expect(throws: CollectionCommandError("argument must be between 0 and 2147483647 inclusive")) {
            try limits.set("list-compress-depth", to: -1)
        }
        #expect(throws: CollectionCommandError("argument must be between 0 and 9223372036854775807 inclusive")) {
            try limits.set("hash-max-listpack-entries", to: -1)
        }
        #expect(throws: CollectionCommandError.self) { try limits.set("no-such", to: 1) }
        #expect(CollectionLimits.parameterNames.allSatisfy { CollectionLimits().value(of: $0) != nil })
    }
}
