// The Vercel AI SDK's generateObject with a zod schema through createOpenAI(...).chat, against the mock
// at argv[2]. Prints {object, finishReason} as one JSON line for tests/test_clients_openai_profile.py.
import { createOpenAI } from "@ai-sdk/openai";
import { generateObject } from "ai";
import { z } from "zod";

const openai = createOpenAI({ baseURL: process.argv[2], apiKey: "test" });
const result = await generateObject({
  model: openai.chat("gpt-4o"),
  schema: z.object({ name: z.string(), population: z.number().int() }),
  prompt: "ai-sdk: describe Rennes as a city record.",
  maxRetries: 0,
});
console.log(JSON.stringify({ object: result.object, finishReason: result.finishReason }));
