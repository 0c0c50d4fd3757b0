// openai-node's chat.completions.parse with a zod response format, against the mock at argv[2].
// Prints {parsed, content, finish_reason} as one JSON line for tests/test_clients_openai_profile.py.
import OpenAI from "openai";
import { zodResponseFormat } from "openai/helpers/zod";
import { z } from "zod";

const baseURL = process.argv[2];
const client = new OpenAI({ baseURL, apiKey: "test", maxRetries: 0, timeout: 10_000 });
const City = z.object({ name: z.string(), population: z.number().int() });
const completion = await client.chat.completions.parse({
  model: "gpt-4o",
  messages: [{ role: "user", content: "openai-node: describe Nice as a city record." }],
  response_format: zodResponseFormat(City, "city"),
});
const choice = completion.choices[0];
console.log(JSON.stringify({ parsed: choice.message.parsed, content: choice.message.content, finish_reason: choice.finish_reason }));
