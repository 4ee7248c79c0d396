/// An error from the store. A struct over a private code, so new codes do not break callers.
///
/// `message` is a single line meant for people (and for the RESP error a server sends).
public struct StoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The data directory is locked by another process.
        public static let directoryInUse = Code("directoryInUse")
        /// The directory is not a Strata data directory, or it is of a newer format.
        public static let incompatibleDirectory = Code("incompatibleDirectory")
        /// The directory could not be created, opened or read.
        public static let directoryUnusable = Code("directoryUnusable")
        /// A value (with its key) is larger than the disk tier can ever hold.
        public static let valueTooLarge = Code("valueTooLarge")
        /// The disk tier cannot take writes right now (its budget or the file system is full).
        public static let diskFull = Code("diskFull")
        /// LMDB reported an error.
        public static let storage = Code("storage")
        /// The operation needs a value of another form (for example an integer).
        public static let wrongValue = Code("wrongValue")
        /// The key holds a value of another kind (a collection where a string was asked for).
        public static let wrongType = Code("wrongType")
        /// The store is closed.
        public static let closed = Code("closed")
        /// A configuration value is out of range.
        public static let badConfiguration = Code("badConfiguration")
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// A string read of a key that holds a collection.
    public static let wrongType = StoreError(.wrongType, "WRONGTYPE Operation against a key holding the wrong kind of value")
}
