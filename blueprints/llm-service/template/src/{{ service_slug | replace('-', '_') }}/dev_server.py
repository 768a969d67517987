"""A development server on the CPU with the same OpenAI API as the vLLM servers.

Built on LitServe's `OpenAISpec`: `/v1/chat/completions`, whole or streamed. It loads the base
model from a local `save_pretrained` folder or from the registry (the `champion` version, as
the serving init container does) and applies the PEFT LoRA adapters by name: a request's
`model` picks the base model (the served model name) or one adapter (its registered name).
Slow, one request at a time, for development and tests only; production runs vLLM.

    dev-server --model-dir ./tiny-model --adapter my-adapter=./tiny-adapter --port 8000
    dev-server --from-registry --port 8000     # MLFLOW_TRACKING_URI decides where
"""

from __future__ import annotations

import argparse
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import litserve as ls
from fastapi import HTTPException
from litserve.specs.openai import OpenAISpec

from . import project


def chat_prompt(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """The prompt text: the tokenizer's chat template, or plain `role: content` lines."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    lines = [f"{m['role']}: {m['content']}" for m in messages]
    return "\n".join([*lines, "assistant:"])


def message_text(content: Any) -> str:
    """An OpenAI message's content as text (plain, or the text parts of a list)."""
    if isinstance(content, str) or content is None:
        return content or ""
    return "".join(getattr(part, "text", "") or "" for part in content)


class ChatAPI(ls.LitAPI):
    """Generation with transformers; LoRA adapters switched per request with PEFT."""

    def __init__(self, model_dir: Path, adapters: dict[str, Path], served_name: str) -> None:
        super().__init__(spec=OpenAISpec())
        self.model_dir = model_dir
        self.adapter_dirs = adapters
        self.served_name = served_name

    def setup(self, device: str) -> None:
        """Load the tokenizer, the base model and every adapter onto the CPU."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        model = AutoModelForCausalLM.from_pretrained(self.model_dir)
        if self.adapter_dirs:
            from peft import PeftModel

            names = iter(self.adapter_dirs.items())
            first, path = next(names)
            model = PeftModel.from_pretrained(model, str(path), adapter_name=first)
            for name, path in names:
                model.load_adapter(str(path), adapter_name=name)
        self.model = model.eval()

    def predict(self, request: Any, context: dict | None = None) -> Iterator[str]:
        """Stream the answer of the model (or adapter) the request names."""
        import torch
        from transformers import TextIteratorStreamer

        name = request.model or self.served_name
        if name != self.served_name and name not in self.adapter_dirs:
            known = ", ".join([self.served_name, *self.adapter_dirs])
            raise HTTPException(404, f"model {name!r} is not served here; known: {known}")
        messages = [{"role": m.role, "content": message_text(m.content)} for m in request.messages]
        inputs = self.tokenizer(chat_prompt(self.tokenizer, messages), return_tensors="pt")
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        temperature = request.temperature or 0.0
        settings = {
            **inputs,
            "streamer": streamer,
            "max_new_tokens": request.max_tokens or request.max_completion_tokens or 128,
            "do_sample": temperature > 0,
            "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id or 0,
        }
        if temperature > 0:
            settings["temperature"] = temperature

        def generate() -> None:
            with torch.no_grad():
                if name in self.adapter_dirs:
                    self.model.set_adapter(name)
                    self.model.generate(**settings)
                elif self.adapter_dirs:
                    with self.model.disable_adapter():
                        self.model.generate(**settings)
                else:
                    self.model.generate(**settings)

        worker = threading.Thread(target=generate, daemon=True)
        worker.start()
        for piece in streamer:
            if piece:
                yield piece
        worker.join()

    def encode_response(self, output: Iterator[str], context: dict | None = None) -> Iterator[dict]:
        """Each piece as an assistant message delta."""
        for piece in output:
            yield {"role": "assistant", "content": piece}


def parse_adapter(text: str) -> tuple[str, Path]:
    """`name=path` of `--adapter`."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"use name=path, not {text!r}")
    return name, Path(path)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `dev-server`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model-dir", type=Path, help="a save_pretrained folder of the base")
    source.add_argument(
        "--from-registry", action="store_true", help="pull the champion base and adapters"
    )
    parser.add_argument("--adapter", type=parse_adapter, action="append", default=[])
    parser.add_argument("--served-model-name", default=project.SERVED_MODEL_NAME)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    adapters = dict(args.adapter)
    model_dir = args.model_dir
    if args.from_registry:
        from .pull import pull

        cache = Path(tempfile.mkdtemp(prefix="dev-server-"))
        folders = pull(cache)
        model_dir = folders.pop(project.REGISTERED_MODEL)
        adapters = {**folders, **adapters}
    api = ChatAPI(model_dir, adapters, args.served_model_name)
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1, timeout=600)
    server.run(host=args.host, port=args.port, generate_client_file=False, num_api_servers=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
