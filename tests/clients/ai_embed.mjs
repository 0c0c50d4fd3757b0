// The Vercel AI SDK's embed and embedMany through createOpenAI(...).embedding, against the mock at argv[2].
// Prints {one, many, usage, cosine} as one JSON line for tests/test_embeddings.py: the first vector of each
// call (embed, and embedMany over three values with dimensions 64), the token count embedMany reports, and
// the SDK's own cosineSimilarity of the first two values of the batch.
import { createOpenAI } from "@ai-sdk/openai";
import { cosineSimilarity, embed, embedMany } from "ai";

const openai = createOpenAI({ baseURL: process.argv[2], apiKey: "test" });
const one = await embed({
  model: openai.embedding("text-embedding-3-small"),
  value: "ai-sdk: a sunny day in Paris",
  maxRetries: 0,
});
const many = await embedMany({
  model: openai.embedding("text-embedding-3-small"),
  values: ["ai-sdk: a sunny day in Paris", "ai-sdk: rain in Rome", "ai-sdk: snow in Oslo"],
  providerOptions: { openai: { dimensions: 64 } },
  maxRetries: 0,
});
console.log(
  JSON.stringify({
    one: one.embedding,
    many: many.embeddings,
    usage: many.usage,
    cosine: cosineSimilarity(many.embeddings[0], many.embeddings[1]),
  }),
);
