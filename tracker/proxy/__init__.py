"""The metering proxy: a local reverse proxy for the OpenAI API that records what each request used."""
