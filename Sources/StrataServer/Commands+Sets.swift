import NIOCore
import RESP
import StrataCollections
import StrataStore

extension Commands {
    static let sets: [CommandSpec] = []
}
