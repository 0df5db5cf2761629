import Foundation
import Testing
import WireFormats

/// Semantic equality (members as a set, numbers by value) with a hash to match, and member order kept.
@Suite struct JSONValueTests {
    @Test func objectsEqualInAnyOrderAndNumbersByValue() {
        let written: JSONValue = ["a": 1, "b": ["c": 2.0, "d": [true, nil]]]
        let reordered: JSONValue = ["b": ["d": [true, nil], "c": 2], "a": 1.0]
        #expect(written == reordered)
        #expect(written.hashValue == reordered.hashValue)
        #expect(written != ["a": 1, "b": ["c": 2, "d": [true]]])
        #expect(written != ["a": 1])
        #expect(JSONValue.int(1) != .string("1"))
    }

    @Test func membersAreSetInPlaceAppendedAndRemoved() {
        var members: JSONObject = ["z": 1, "a": 2]
        members["z"] = "first"
        members["m"] = 3
        #expect(members.keys == ["z", "a", "m"])
        #expect(members.removeValue(forKey: "a") == 2)
        members["m"] = nil
        #expect(members.keys == ["z"])
        #expect(JSONValue.object(members).setting("y", true).objectValue?.keys == ["z", "y"])
    }

    @Test func aDictionaryGivesMembersSortedByKey() {
        let dictionary: [String: JSONValue] = ["b": 1, "a": 2, "c": 3]
        #expect(JSONValue.object(dictionary).objectValue?.keys == ["a", "b", "c"])
    }

    @Test func codableRoundTrip() throws {
        let value: JSONValue = [
            "s": "x", "i": 9_007_199_254_740_993, "d": 1.5, "b": false, "n": nil, "a": [1, ["k": "v"]],
        ]
        let decoded = try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(value))
        #expect(decoded == value)
        #expect(decoded["i"] == .int(9_007_199_254_740_993))
    }
}
