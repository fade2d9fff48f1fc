FROM python:3.11-slim
WORKDIR /app
COPY . /app
RUN pip install --no-cache-dir -e ".[postgres]"
ENV INTERLOCK_HOME=/var/lib/interlock
EXPOSE 8000
CMD ["interlock", "serve", "--host", "0.0.0.0"]
