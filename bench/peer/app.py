"""The benchmark's peer: a user service written the way the seed describes it.

FastAPI + SQLAlchemy (ORM, psycopg2) + passlib bcrypt + PyJWT, one uvicorn
worker with uvloop and httptools, a connection pool sized to 64. It serves
the same user routes as toko (register, login, get by id, list, health) on
the same PostgreSQL, in its own schema, so `npm run bench` can measure both
in one run. Not part of toko: nothing in the application imports it.

Environment: PEER_DATABASE_URL (postgresql://...), PORT, PEER_SECRET,
PEER_BCRYPT_ROUNDS (default 12), PEER_ADMIN_EMAIL / PEER_ADMIN_PASSWORD.
"""
import datetime as dt
import os
import uuid
from typing import List, Optional

import jwt
import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException, Query
from passlib.context import CryptContext
from pydantic import BaseModel, EmailStr, Field, constr
from sqlalchemy import Boolean, Column, DateTime, String, create_engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, declarative_base, sessionmaker

DATABASE_URL = os.environ["PEER_DATABASE_URL"]
SECRET = os.environ.get("PEER_SECRET", "peer-bench-secret-0123456789")
ROUNDS = int(os.environ.get("PEER_BCRYPT_ROUNDS", "12"))
SCHEMA = "peer"

engine = create_engine(DATABASE_URL, pool_size=64, max_overflow=0, pool_pre_ping=False)
SessionLocal = sessionmaker(bind=engine, autoflush=False, autocommit=False)
Base = declarative_base()
pwd = CryptContext(schemes=["bcrypt"], deprecated="auto", bcrypt__rounds=ROUNDS)


class User(Base):
    __tablename__ = "users"
    __table_args__ = {"schema": SCHEMA}
    id = Column(String(36), primary_key=True)
    email = Column(String(254), unique=True, nullable=False, index=True)
    username = Column(String(32), unique=True, nullable=False)
    password_hash = Column(String(100), nullable=False)
    full_name = Column(String(100), nullable=False)
    role = Column(String(16), nullable=False, default="customer")
    is_active = Column(Boolean, nullable=False, default=True)
    is_verified = Column(Boolean, nullable=False, default=False)
    created_at = Column(DateTime(timezone=True), nullable=False, server_default=func.now())
    updated_at = Column(DateTime(timezone=True), nullable=False, server_default=func.now())


class RegisterIn(BaseModel):
    email: EmailStr
    username: constr(min_length=3, max_length=32, regex=r"^[a-zA-Z0-9_.-]+$")
    password: constr(min_length=8, max_length=72)
    fullName: constr(min_length=1, max_length=100)


class LoginIn(BaseModel):
    email: EmailStr
    password: constr(min_length=1, max_length=72)


class UserOut(BaseModel):
    id: str
    email: str
    username: str
    fullName: str
    role: str
    isActive: bool
    isVerified: bool
    createdAt: dt.datetime
    updatedAt: dt.datetime


class TokenOut(BaseModel):
    accessToken: str
    tokenType: str = "bearer"
    expiresIn: int


class UserPage(BaseModel):
    items: List[UserOut]
    total: int
    skip: int
    limit: int


def out(u: User) -> UserOut:
    return UserOut(
        id=u.id, email=u.email, username=u.username, fullName=u.full_name, role=u.role,
        isActive=u.is_active, isVerified=u.is_verified, createdAt=u.created_at, updatedAt=u.updated_at,
    )


def get_db():
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()


def principal(authorization: Optional[str] = Header(None)) -> dict:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise HTTPException(status_code=401, detail="A bearer token is required")
    try:
        return jwt.decode(authorization[7:], SECRET, algorithms=["HS256"], audience="peer-api")
    except jwt.PyJWTError:
        raise HTTPException(status_code=401, detail="The access token is not valid")


app = FastAPI(title="peer")


@app.on_event("startup")
def startup() -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(f'create schema if not exists "{SCHEMA}"')
    Base.metadata.create_all(engine)
    email, password = os.environ.get("PEER_ADMIN_EMAIL"), os.environ.get("PEER_ADMIN_PASSWORD")
    if email and password:
        with SessionLocal() as db:
            if db.execute(select(User).where(User.email == email)).scalar_one_or_none() is None:
                db.add(User(id=str(uuid.uuid4()), email=email, username="peeradmin", password_hash=pwd.hash(password), full_name="Admin", role="admin"))
                db.commit()


@app.get("/health")
async def health():
    return {"status": "ok", "modules": ["user"]}


@app.post("/api/v1/users/register", status_code=201, response_model=UserOut)
def register(body: RegisterIn, db: Session = Depends(get_db)):
    user = User(id=str(uuid.uuid4()), email=body.email.lower(), username=body.username, password_hash=pwd.hash(body.password), full_name=body.fullName)
    db.add(user)
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        raise HTTPException(status_code=409, detail="A user with this e-mail or username already exists")
    db.refresh(user)
    return out(user)


@app.post("/api/v1/users/login", response_model=TokenOut)
def login(body: LoginIn, db: Session = Depends(get_db)):
    user = db.execute(select(User).where(User.email == body.email.lower())).scalar_one_or_none()
    if user is None or not pwd.verify(body.password, user.password_hash) or not user.is_active:
        raise HTTPException(status_code=401, detail="E-mail or password is wrong")
    now = dt.datetime.now(dt.timezone.utc)
    token = jwt.encode({"sub": user.id, "role": user.role, "aud": "peer-api", "iat": now, "exp": now + dt.timedelta(hours=1)}, SECRET, algorithm="HS256")
    return TokenOut(accessToken=token, expiresIn=3600)


@app.get("/api/v1/users/{user_id}", response_model=UserOut)
def get_user(user_id: str, who: dict = Depends(principal), db: Session = Depends(get_db)):
    if who["role"] != "admin" and who["sub"] != user_id:
        raise HTTPException(status_code=404, detail="No such user")
    user = db.get(User, user_id)
    if user is None:
        raise HTTPException(status_code=404, detail="No such user")
    return out(user)


@app.get("/api/v1/users", response_model=UserPage)
def list_users(skip: int = Query(0, ge=0), limit: int = Query(20, ge=1, le=100), who: dict = Depends(principal), db: Session = Depends(get_db)):
    if who["role"] != "admin":
        raise HTTPException(status_code=403, detail="This route is for administrators")
    total = db.execute(select(func.count()).select_from(User)).scalar_one()
    users = db.execute(select(User).order_by(User.created_at, User.id).offset(skip).limit(limit)).scalars().all()
    return UserPage(items=[out(u) for u in users], total=total, skip=skip, limit=limit)


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8000")), workers=1, loop="uvloop", http="httptools", log_level="warning", access_log=False)
