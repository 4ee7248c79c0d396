extension SetValue {
    /// The set as bytes: the header, then for an intset the count and each integer as 8 bytes,
    /// for a listpack the count and raw entry bytes, for a table the count and each member.
    public func serialize() -> [UInt8] {
        switch storage {
        case .intset(let a):
            var w = SerializationTag.writer(.set, .intset)
            w.count(a.count)
            for v in a { w.fixed64(UInt64(bitPattern: v)) }
            return w.bytes
        case .listpack(let lp):
            var w = SerializationTag.writer(.set, .listpack)
            w.count(lp.count)
            w.string(lp.bytes)
            return w.bytes
        case .table(let t):
            var w = SerializationTag.writer(.set, .hashtable)
            w.count(t.count)
            for slot in t.slots { w.string(slot.key) }
            return w.bytes
        }
    }

    /// The set `serialize()` wrote, in the same encoding; throws on anything else (wrong type,
    /// truncation, trailing bytes, an unsorted intset, a repeated member).
    public init(deserializing bytes: [UInt8]) throws(CollectionFormatError) {
        var r = ByteReader(bytes)
        switch try SerializationTag.read(&r, expecting: .set) {
        case .intset:
            let n = try r.count(atMost: r.remaining / 8)
            var a: [Int64] = []
            a.reserveCapacity(n)
            for _ in 0..<n {
                let v = Int64(bitPattern: try r.fixed64())
                if let last = a.last, last >= v { throw CollectionFormatError("intset members out of order") }
                a.append(v)
            }
            try r.expectEnd()
            self.init(storage: .intset(a), memberBytes: 0)
        case .listpack:
            let n = try r.count(atMost: r.remaining)
            let lp = try Listpack.validated(bytes: try r.string(), count: n)
            guard Set(lp.elements).count == n else { throw CollectionFormatError("repeated set member") }
            try r.expectEnd()
            self.init(storage: .listpack(lp), memberBytes: 0)
        case .hashtable:
            let n = try r.count(atMost: r.remaining)
            var t = ByteTable<Void>(capacity: n)
            var memberBytes = 0
            for _ in 0..<n {
                let m = try r.string()
                guard t.index(of: m) == nil else { throw CollectionFormatError("repeated set member") }
                t.insertNew(m, ())
                memberBytes += ByteCost.string(m.count)
            }
            try r.expectEnd()
            self.init(storage: .table(t), memberBytes: memberBytes)
        case let other:
            throw CollectionFormatError("encoding \(other) is not a set encoding")
        }
    }
}
