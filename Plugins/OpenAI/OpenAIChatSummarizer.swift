import Foundation
import Logging
public import ParleyPluginAPI

/// Summaries from any OpenAI-compatible chat-completions server, asked for JSON that follows a
/// schema (summary points, decisions, action items with owner, task, due and time). The answer
/// is validated; an invalid one is sent back once with what was wrong, then the stage fails.
///
/// Settings (`[summarizer.openai-chat]`): `base_url` (required), `api_key`, `model` (required),
/// `temperature` (0.2), `timeout` (seconds, 300), `max_retries` (4).
public struct OpenAIChatSummarizer: Summarizer {
    public static let name = "openai-chat"
    public static let summary = "any OpenAI-compatible /v1/chat/completions server, JSON schema, validated"

    let client: OpenAIClient
    public let model: String
    public let temperature: Double

    public init(settings: PluginSettings) throws(PluginError) {
        client = try OpenAIClient(settings: settings, pluginName: "openai-chat")
        guard let model = settings.string("model") else {
            throw .badSetting("\(settings.section).model", "required (the chat model's name)")
        }
        self.model = model
        temperature = try settings.double("temperature", default: 0.2)
    }

    public func readiness() async -> Readiness { await client.readiness() }

    /// What the model must answer.
    struct Answer: Codable {
        struct Item: Codable {
            var owner: String?
            var task: String
            var due: String?
            var time: Double
        }
        struct Point: Codable {
            var text: String
            var time: Double
        }
        var summary: [String]
        var decisions: [Point]
        var actionItems: [Item]

        enum CodingKeys: String, CodingKey {
            case summary, decisions
            case actionItems = "action_items"
        }
    }

    static var schema: [String: Any] {
        [
            "type": "object", "additionalProperties": false, "required": ["summary", "decisions", "action_items"],
            "properties": [
                "summary": ["type": "array", "items": ["type": "string"]],
                "decisions": [
                    "type": "array",
                    "items": [
                        "type": "object", "additionalProperties": false, "required": ["text", "time"],
                        "properties": ["text": ["type": "string"], "time": ["type": "number"]],
                    ],
                ],
                "action_items": [
                    "type": "array",
                    "items": [
                        "type": "object", "additionalProperties": false, "required": ["owner", "task", "due", "time"],
                        "properties": [
                            "owner": ["type": ["string", "null"]], "task": ["type": "string"],
                            "due": ["type": ["string", "null"]], "time": ["type": "number"],
                        ],
                    ],
                ],
            ],
        ]
    }

    static let instructions = """
        You write meeting minutes. From the transcript, give: "summary", 3 to 7 short key points; \
        "decisions", what the meeting decided, each with the time in seconds where it was said; \
        "action_items", each task someone took on, with "owner" (the person's name or speaker label, \
        null if nobody), "task" (an imperative phrase), "due" (as said, e.g. "Thursday", null if none) \
        and "time" in seconds. Answer with JSON only, following the schema.
        """

    public func summarize(
        _ transcript: [AttributedSegment], participants: [Participant], context: PluginContext
    ) async throws -> MeetingSummary {
        let names = Dictionary(participants.map { ($0.id, $0.name) }) { first, _ in first }
        let lines = transcript.map { segment in
            "[\(Int(segment.start)) s] \(names[segment.speaker] ?? segment.speaker): \(segment.text)"
        }
        let duration = transcript.last?.end ?? 0
        var messages: [[String: String]] = [
            ["role": "system", "content": Self.instructions],
            ["role": "user", "content": lines.joined(separator: "\n")],
        ]
        for attempt in 0..<2 {
            let content = try await complete(messages)
            switch Self.validate(content, duration: duration) {
            case .success(let answer):
                return MeetingSummary(
                    points: answer.summary,
                    decisions: answer.decisions.map { Decision(text: $0.text, time: $0.time) },
                    actionItems: answer.actionItems.map {
                        ActionItem(owner: $0.owner, task: $0.task, due: $0.due, time: $0.time)
                    })
            case .failure(let problem):
                context.logger.info(
                    "invalid summary answer", metadata: ["attempt": "\(attempt)", "problem": "\(problem)"])
                guard attempt == 0 else {
                    throw PluginError(
                        .protocolViolation, "openai-chat: the model's answer was invalid twice: \(problem)")
                }
                messages.append(["role": "assistant", "content": content])
                messages.append([
                    "role": "user",
                    "content":
                        "That answer was invalid: \(problem). Answer again with JSON only, following the schema.",
                ])
            }
        }
        throw PluginError(.protocolViolation, "openai-chat: no valid answer")
    }

    func complete(_ messages: [[String: String]]) async throws -> String {
        let request: [String: Any] = [
            "model": model, "temperature": temperature, "messages": messages,
            "response_format": [
                "type": "json_schema",
                "json_schema": ["name": "meeting_minutes", "strict": true, "schema": Self.schema],
            ],
        ]
        let body = try JSONSerialization.data(withJSONObject: request, options: [.sortedKeys])
        let data = try await client.post(path: "/chat/completions", contentType: "application/json", body: body)
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let choices = object["choices"] as? [[String: Any]],
            let message = choices.first?["message"] as? [String: Any],
            let content = message["content"] as? String
        else {
            throw PluginError(
                .protocolViolation,
                "openai-chat: not a chat completion: \(String(decoding: data.prefix(200), as: UTF8.self))")
        }
        return content
    }

    /// Parses and checks an answer: the schema's shape, non-empty texts, times inside the meeting.
    static func validate(_ content: String, duration: Double) -> Result<Answer, Failure> {
        var text = content.trimmingCharacters(in: .whitespacesAndNewlines)
        // Some servers wrap JSON in a Markdown fence even when asked not to.
        if text.hasPrefix("```") {
            text = text.split(separator: "\n").dropFirst().filter { !$0.hasPrefix("```") }.joined(separator: "\n")
        }
        let answer: Answer
        do {
            answer = try JSONDecoder().decode(Answer.self, from: Data(text.utf8))
        } catch {
            return .failure(Failure("not JSON of the schema (\(error))"))
        }
        let slack = max(5, duration * 0.05)
        if answer.summary.contains(where: { $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
            return .failure(Failure("an empty summary point"))
        }
        for item in answer.actionItems {
            if item.task.trimmingCharacters(in: .whitespaces).isEmpty {
                return .failure(Failure("an action item without a task"))
            }
            if item.time < 0 || item.time > duration + slack {
                return .failure(
                    Failure("action item time \(item.time) s is outside the meeting (0 to \(Int(duration)) s)"))
            }
        }
        for decision in answer.decisions where decision.time < 0 || decision.time > duration + slack {
            return .failure(Failure("decision time \(decision.time) s is outside the meeting"))
        }
        return .success(answer)
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
