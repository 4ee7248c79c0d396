extension HashValue {
    /// The hash as bytes: the header, then for a listpack its entry count and raw entry bytes,
    /// for a table its field count and each field and value length-prefixed.
    public func serialize() -> [UInt8] {
        switch storage {
        case .listpack(let lp):
            var w = SerializationTag.writer(.hash, .listpack)
            w.count(lp.count)
            w.string(lp.bytes)
            return w.bytes
        case .table(let t):
            var w = SerializationTag.writer(.hash, .hashtable)
            w.count(t.count)
            for slot in t.slots {
                w.string(slot.key)
                w.string(slot.value)
            }
            return w.bytes
        }
    }

    /// The hash `serialize()` wrote, in the same encoding; throws on anything else (wrong type,
    /// truncation, trailing bytes, an odd listpack, a repeated field).
    public init(deserializing bytes: [UInt8]) throws(CollectionFormatError) {
        var r = ByteReader(bytes)
        let encoding = try SerializationTag.read(&r, expecting: .hash)
        switch encoding {
        case .listpack:
            let n = try r.count(atMost: r.remaining)
            let lp = try Listpack.validated(bytes: try r.string(), count: n)
            guard n % 2 == 0 else { throw CollectionFormatError("listpack hash has an odd number of entries") }
            var fields = Set<[UInt8]>()
            let all = lp.elements
            for i in stride(from: 0, to: all.count, by: 2) where !fields.insert(all[i]).inserted {
                throw CollectionFormatError("repeated hash field")
            }
            try r.expectEnd()
            self.init(storage: .listpack(lp), entryBytes: 0)
        case .hashtable:
            let n = try r.count(atMost: r.remaining / 2)
            var t = ByteTable<[UInt8]>(capacity: n)
            var entryBytes = 0
            for _ in 0..<n {
                let field = try r.string()
                let value = try r.string()
                guard t.index(of: field) == nil else { throw CollectionFormatError("repeated hash field") }
                t.insertNew(field, value)
                entryBytes += ByteCost.string(field.count) + ByteCost.string(value.count)
            }
            try r.expectEnd()
            self.init(storage: .table(t), entryBytes: entryBytes)
        default:
            throw CollectionFormatError("encoding \(encoding) is not a hash encoding")
        }
    }
}
