# pagesplit developer entry points.
#
#   make demo   start Kafka + schema registry locally and run the demo pipeline
#   make test   start Kafka + schema registry locally and run all tests,
#               the container image's among them (built with podman)
#
# `make deps` (run by up, test and demo) installs the missing Debian packages
# (deploy/local/deps: Java, Maven, Prometheus, C toolchain, ...). The first
# `make up` downloads Kafka and Apicurio Registry from Maven Central into .local/.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Ports of the local stack; e.g. `make test KAFKA_PORT=19092 REGISTRY_PORT=18081`
# runs against a second, separate stack (controller port: KAFKA_PORT + 1).
KAFKA_PORT ?= 9092
REGISTRY_PORT ?= 8081
export KAFKA_PORT REGISTRY_PORT

STACK := deploy/local/stack
CARGO ?= cargo

# Addresses the integration tests use.
export PAGESPLIT_TEST_BOOTSTRAP := 127.0.0.1:$(KAFKA_PORT)
export PAGESPLIT_TEST_REGISTRY := http://127.0.0.1:$(REGISTRY_PORT)/apis/ccompat/v7
# Python interoperability tests (confluent-kafka + fastavro) run in this virtualenv.
VENV := .local/venv
export PAGESPLIT_TEST_PYTHON ?= $(CURDIR)/$(VENV)/bin/python

.PHONY: help deps up down status logs topics test demo lint fmt bench soak venv image test-container

# The container image deploy/Dockerfile makes, built locally with podman
# (deploy/image/build-local) and tested by tests/container.rs.
IMAGE ?= localhost/pagesplit:latest
export PAGESPLIT_TEST_IMAGE := $(IMAGE)
# podman-compose from PyPI (Debian 12's 1.0.3 starts every service despite
# --no-deps and cannot put one on the host network).
COMPOSE_VENV := .local/venv-compose
export PAGESPLIT_TEST_PODMAN_COMPOSE ?= $(CURDIR)/$(COMPOSE_VENV)/bin/podman-compose
define CONTAINER_TESTS
deploy/image/build-local $(IMAGE)
$(MAKE) --no-print-directory $(COMPOSE_VENV)/.installed
$(CARGO) test --features container-tests --test container
endef

help:
	@echo 'make demo     start the local stack and run the demo pipeline'
	@echo 'make test     start the local stack and run all tests'
	@echo 'make lint     rustfmt check + clippy (warnings are errors)'
	@echo 'make image    build the container image locally with podman'
	@echo 'make test-container   build the image and run its tests against the local stack'
	@echo 'make bench    run the benchmarks'
	@echo 'make soak     soak on a local 3-broker cluster with random faults (SOAK_MINUTES, default 10)'
	@echo 'make deps     install the missing system packages (Prometheus, Java, Maven, ...)'
	@echo 'make up | down | status | logs | topics   manage the local Kafka + schema registry'

deps:
	deploy/local/deps

up: deps
	$(STACK) up

down:
	$(STACK) down

status:
	$(STACK) status

logs:
	$(STACK) logs

topics:
	$(STACK) topics

venv: $(VENV)/.installed

$(VENV)/.installed: tests/python/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -r tests/python/requirements.txt
	touch $@

$(COMPOSE_VENV)/.installed:
	python3 -m venv $(COMPOSE_VENV)
	$(COMPOSE_VENV)/bin/python -m pip install -q --disable-pip-version-check \
		podman-compose==1.6.0 python-dotenv==1.2.4 PyYAML==6.0.4
	touch $@

test: deps up venv
	$(CARGO) test --all-targets --features broker-tests
	deploy/local/asyncapi-validate
	bash deploy/validate.sh
	$(CONTAINER_TESTS)

image: deps
	deploy/image/build-local $(IMAGE)

test-container: deps up
	$(CONTAINER_TESTS)

demo: deps up
	$(CARGO) run --release -- demo

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --all-features -- -D warnings

fmt:
	$(CARGO) fmt --all

bench:
	$(CARGO) bench

# A bounded soak on its own 3-broker cluster (ports 29092-29097), both delivery modes.
SOAK_MINUTES ?= 10
soak: deps
	bench/soak.sh --minutes $(SOAK_MINUTES)
