import Foundation
import Testing
@testable import JSONRPC

@Suite struct MessageDecodingTests {
    private func decode(_ text: String) -> DecodedMessage { MessageDecoder.decode(Data(text.utf8)) }

    private func expectInvalid(_ text: String, id: RequestID?, code: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        guard case .invalid(let gotID, let error) = decode(text) else {
            Issue.record("\(text) was accepted", sourceLocation: sourceLocation)
            return
        }
        #expect(gotID == id, sourceLocation: sourceLocation)
        #expect(error.code == code, sourceLocation: sourceLocation)
    }

    @Test func requestsAndNotifications() {
        guard case .request(let request, let id) = decode(#"{"jsonrpc":"2.0","id":"a/b","method":"m","params":[1]}"#) else {
            Issue.record("not a request")
            return
        }
        #expect(id == .string("a/b"))
        #expect(request.method == "m")
        #expect(request.rawParams == [1])
        guard case .request(_, .null) = decode(#"{"jsonrpc":"2.0","id":null,"method":"m"}"#) else {
            Issue.record("a null id is a request")
            return
        }
        guard case .notification(let note) = decode(#"{"jsonrpc":"2.0","method":"n","params":null}"#) else {
            Issue.record("not a notification")
            return
        }
        #expect(note.id == nil)
        #expect(note.rawParams == nil)
        guard case .response(.number(4)) = decode(#"{"jsonrpc":"2.0","id":4,"result":true}"#) else {
            Issue.record("a response is not a request")
            return
        }
        guard case .batch(let elements) = decode(#"[1, {"a":2} ,"x"]"#) else {
            Issue.record("not a batch")
            return
        }
        #expect(elements == [Data("1".utf8), Data(#"{"a":2}"#.utf8), Data(#""x""#.utf8)])
    }

    @Test func parseErrorsRecoverTheIDWhenPossible() {
        expectInvalid(#"{"jsonrpc":"2.0","id":5,"method":"m","params":{"#, id: .number(5), code: -32700)
        expectInvalid(#"{"jsonrpc":"2.0","method":"m" oops"#, id: nil, code: -32700)
        expectInvalid("", id: nil, code: -32700)
        expectInvalid(#"{"id":1} trailing"#, id: .number(1), code: -32700)
    }

    @Test func invalidRequestsKeepTheirID() {
        expectInvalid(#"{"id":6,"method":"m"}"#, id: .number(6), code: -32600)
        expectInvalid(#"{"jsonrpc":"1.0","id":6,"method":"m"}"#, id: .number(6), code: -32600)
        expectInvalid(#"{"jsonrpc":"2.0","id":"x","method":7}"#, id: .string("x"), code: -32600)
        expectInvalid(#"{"jsonrpc":"2.0","id":8}"#, id: .number(8), code: -32600)
        expectInvalid(#"{"jsonrpc":"2.0","id":9,"method":"m","params":"p"}"#, id: .number(9), code: -32600)
        expectInvalid(#"{"jsonrpc":"2.0","id":9,"method":"m","params":3}"#, id: .number(9), code: -32600)
        expectInvalid(#"{"jsonrpc":"2.0","method":"m","params":true}"#, id: nil, code: -32600)
    }

    @Test func unreadableIDsAnswerToNull() {
        expectInvalid(#"{"jsonrpc":"2.0","id":{"a":1},"method":"m"}"#, id: nil, code: -32600)
        expectInvalid(#"{"jsonrpc":"2.0","id":true,"method":"m"}"#, id: nil, code: -32600)
        expectInvalid(#"{"jsonrpc":"2.0","id":1.5,"method":"m"}"#, id: nil, code: -32600)
        expectInvalid("42", id: nil, code: -32600)
        expectInvalid(#""text""#, id: nil, code: -32600)
    }

    @Test func batchElementsAreDecodedOneByOne() throws {
        guard case .request(let request, .number(3)) = MessageDecoder.decodeBatchElement(Data(#"{"jsonrpc":"2.0","id":3,"method":"add","params":{"a":1,"b":2}}"#.utf8)) else {
            Issue.record("not a request")
            return
        }
        #expect(try request.params(TestHandler.AddParams.self).b == 2)
        guard case .invalid(nil, let error) = MessageDecoder.decodeBatchElement(Data("1".utf8)) else {
            Issue.record("a number is not a request")
            return
        }
        #expect(error.code == -32600)
    }

    private struct Options: Decodable {
        enum Mode: String, Decodable { case live, test }
        let key: String
        let minValidity: Double?
        let scope: [String]?
        let mode: Mode?
    }

    private struct Wrapper: Decodable {
        let options: Options
    }

    private func paramsError<P: Decodable>(_ params: String, as type: P.Type) -> String? {
        let message = IncomingMessage(id: .number(1), method: "m", paramsJSON: Data(params.utf8))
        do {
            _ = try message.params(P.self)
            return nil
        } catch {
            #expect(error.code == ResponseError.Code.invalidParams)
            return error.message
        }
    }

    @Test func paramsErrorsNameTheField() {
        #expect(paramsError(#"{"key":"k","minValidity":"soon"}"#, as: Options.self) == "invalid params: 'minValidity' must be a number")
        #expect(paramsError(#"{"minValidity":1}"#, as: Options.self) == "invalid params: missing required field 'key'")
        #expect(paramsError(#"{"options":{"key":"k","scope":["a",2]}}"#, as: Wrapper.self) == "invalid params: 'options.scope[1]' must be a string")
        #expect(paramsError(#"{"options":{"key":null}}"#, as: Wrapper.self) == "invalid params: 'options.key' must be a string, not null")
        #expect(paramsError(#"{"key":"k","scope":"read"}"#, as: Options.self) == "invalid params: 'scope' must be an array")
        #expect(paramsError(#"[1]"#, as: Options.self) == "invalid params: params must be an object")
        #expect(paramsError(#"{"options":{"key":"k","mode":"secret-value"}}"#, as: Wrapper.self) == "invalid params: 'options.mode' is invalid")
        #expect(paramsError(#"{"key":"k"}"#, as: Options.self) == nil)
    }

    private struct Validated: Decodable {
        init(from decoder: any Decoder) throws {
            throw ResponseError.invalidParams("invalid params: 'scope' must not be empty")
        }
    }

    @Test func validationErrorsFromParamsTypesPassThrough() {
        #expect(throws: ResponseError.invalidParams("invalid params: 'scope' must not be empty")) {
            try IncomingMessage(id: .number(1), method: "m", params: ["scope": []]).params(Validated.self)
        }
    }

    @Test func absentParamsDecodeFromEmptyObject() throws {
        struct Optional: Decodable { let x: Int? }
        let message = IncomingMessage(id: .number(1), method: "m")
        #expect(try message.params(Optional.self).x == nil)
        #expect(throws: ResponseError.invalidParams("invalid params: missing required field 'key'")) {
            try message.params(Options.self)
        }
    }

    @Test func responsesAlwaysCarryResultAndKeepSlashes() throws {
        let success = try JSONDecoder().decode(JSONValue.self, from: Data(OutgoingMessage.response(id: .number(1), outcome: .success(.null))))
        #expect(success == ["jsonrpc": "2.0", "id": 1, "result": nil])
        let url = String(decoding: OutgoingMessage.response(id: .string("u"), outcome: .success("https://a.example/b")), as: UTF8.self)
        #expect(url.contains("https://a.example/b"))
        let failure = try JSONDecoder().decode(JSONValue.self, from: Data(OutgoingMessage.response(id: .null, outcome: .failure(.init(code: -32001, message: "m", data: ["kind": "x"])))))
        #expect(failure == ["jsonrpc": "2.0", "id": nil, "error": ["code": -32001, "message": "m", "data": ["kind": "x"]]])
        let nan = try JSONDecoder().decode(JSONValue.self, from: Data(OutgoingMessage.response(id: .number(2), outcome: .success(.double(.nan)))))
        #expect(nan.errorCode == -32603)
    }
}
