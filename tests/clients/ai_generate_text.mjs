// The Vercel AI SDK's generateText through createOpenAI(...).chat, against the mock at argv[2].
// gpt-5-mini is a reasoning model to the SDK, so the system prompt goes out as a developer message.
// Prints {text, finishReason} as one JSON line for tests/test_clients_openai_profile.py.
import { createOpenAI } from "@ai-sdk/openai";
import { generateText } from "ai";

const openai = createOpenAI({ baseURL: process.argv[2], apiKey: "test" });
const result = await generateText({
  model: openai.chat("gpt-5-mini"),
  system: "You are a terse assistant.",
  prompt: "ai-sdk: say hello.",
  maxRetries: 0,
});
console.log(JSON.stringify({ text: result.text, finishReason: result.finishReason }));
