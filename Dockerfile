FROM python:3.11-slim
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends make && rm -rf /var/lib/apt/lists/*
COPY . .
RUN make install PYTHON=python3 VENV=/opt/venv
ENV PATH=/opt/venv/bin:$PATH HF_HUB_OFFLINE=1 LITELLM_LOCAL_MODEL_COST_MAP=True
EXPOSE 8000
CMD ["moe", "serve"]
