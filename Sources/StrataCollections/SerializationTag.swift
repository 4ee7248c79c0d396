/// The two bytes that open every serialized collection: what kind of value it is and which
/// encoding it had, so a loaded value keeps its encoding (a big hash stays a hashtable).
enum SerializationTag {
    /// The first byte: the value's type.
    enum Kind: UInt8 {
        case hash = 0x48  // "H"
        case list = 0x4C  // "L"
        case set = 0x53  // "S"
        case sortedSet = 0x5A  // "Z"
    }

    /// The second byte: the encoding.
    enum Encoding: UInt8 {
        case listpack = 1
        case hashtable = 2
        case intset = 3
        case skiplist = 4
        case quicklist = 5
    }

    /// A writer that has written the header for `kind` and `encoding`.
    static func writer(_ kind: Kind, _ encoding: Encoding) -> ByteWriter {
        var w = ByteWriter()
        w.byte(kind.rawValue)
        w.byte(encoding.rawValue)
        return w
    }

    /// Reads the header, checks it is a `kind` value, and returns its encoding.
    static func read(_ reader: inout ByteReader, expecting kind: Kind) throws(CollectionFormatError) -> Encoding {
        let k = try reader.byte()
        guard k == kind.rawValue else {
            throw CollectionFormatError("type byte 0x\(String(k, radix: 16)) is not a \(kind) value")
        }
        let e = try reader.byte()
        guard let encoding = Encoding(rawValue: e) else { throw CollectionFormatError("unknown encoding byte \(e)") }
        return encoding
    }
}
