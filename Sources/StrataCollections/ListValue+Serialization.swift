import DequeModule

extension ListValue {
    /// The list as bytes: the header (listpack or quicklist), the node count, then each node's
    /// entry count and raw (uncompressed) entry bytes; a loaded list compresses its interior
    /// nodes at its first mutation under a `listCompressDepth` above 0.
    public func serialize() -> [UInt8] {
        var w = SerializationTag.writer(.list, isQuicklist ? .quicklist : .listpack)
        w.count(nodes.count)
        for node in nodes {
            w.count(node.count)
            w.string(node.listpack.bytes)
        }
        return w.bytes
    }

    /// The list `serialize()` wrote, nodes and encoding as they were; throws on anything else
    /// (wrong type, truncation, trailing bytes, an empty node, a listpack of several nodes).
    public init(deserializing bytes: [UInt8]) throws(CollectionFormatError) {
        var r = ByteReader(bytes)
        let encoding = try SerializationTag.read(&r, expecting: .list)
        guard encoding == .listpack || encoding == .quicklist else {
            throw CollectionFormatError("encoding \(encoding) is not a list encoding")
        }
        let n = try r.count(atMost: r.remaining / 2)
        guard encoding == .quicklist || n <= 1 else { throw CollectionFormatError("listpack list with \(n) nodes") }
        var nodes = Deque<Listpack>()
        for _ in 0..<n {
            let k = try r.count(atMost: r.remaining)
            guard k > 0 else { throw CollectionFormatError("empty list node") }
            nodes.append(try Listpack.validated(bytes: try r.string(), count: k))
        }
        try r.expectEnd()
        self.init(nodes: nodes, isQuicklist: encoding == .quicklist)
    }
}
