"""Topics are created with their config; a changelog that exists uncompacted is fixed."""

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from proffer_stream.kafka.topics import ensure_topics, topic_config, topics_for

pytestmark = pytest.mark.integration


async def config_of(settings, name):
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        return await topic_config(admin, name)
    finally:
        await admin.close()


async def test_the_changelog_is_created_compacted(settings):
    changelog = topics_for(settings).signals_changelog.name
    assert (await config_of(settings, changelog)).get("cleanup.policy") == "compact"


async def test_an_existing_uncompacted_changelog_is_compacted(settings):
    own = settings.model_copy(update={"topic_prefix": settings.topic_prefix + "again."})
    changelog = topics_for(own).signals_changelog.name
    admin = AIOKafkaAdminClient(bootstrap_servers=own.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(changelog, 4, 1)])  # as `topics` used to make it
    finally:
        await admin.close()
    assert (await config_of(own, changelog)).get("cleanup.policy") != "compact"
    created = await ensure_topics(own)
    assert changelog not in created
    assert (await config_of(own, changelog)).get("cleanup.policy") == "compact"
