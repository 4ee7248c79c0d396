import Foundation

/// The newest cluster membership this node adopted, kept in `<data dir>/membership` so that a
/// restarted node knows about nodes that joined or left after its `--peers` list was written.
/// Replaced atomically (written beside, then renamed).
public struct MembershipFile: Sendable {
    let path: String

    public init(dataDirectory: String) {
        path = (dataDirectory.isEmpty ? "." : dataDirectory) + "/membership"
    }

    /// The saved membership; nil if there is none. Throws if the file is damaged.
    public func load() throws -> Membership? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        guard let text = String(data: data, encoding: .utf8), let membership = Membership(encoded: text) else {
            throw CocoaError(.fileReadCorruptFile, userInfo: [NSFilePathErrorKey: path])
        }
        return membership
    }

    func save(_ membership: Membership) throws {
        let temporary = path + ".tmp"
        try Data(membership.encoded.utf8).write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, path) == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
    }
}
