import NIOCore
import RESP
import StrataCollections
import StrataStore

extension Commands {
    static let sortedSets: [CommandSpec] = []
}
